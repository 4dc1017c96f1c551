{{
    config(
        materialized='incremental',
        unique_key=['network', 'post_id'],
        meta={
            'dagster': {'partitioning': 'date_network'},
            'partition_columns': {'date': 'post_date', 'network': 'network'},
        },
    )
}}

-- One row per post (network, post_id): the latest scrape wins, by scraped_at, then load and record number.

with versions as (
    {{
        latest_load_wins(
            source('bronze', 'social_posts'),
            ['partition_network', 'post_id'],
            version_column='scraped_at',
            where=partition_filter('partition_date', 'partition_network'),
            count_versions=true,
        )
    }}
),

latest as (
    select
        *,
        {{ json_lookup('raw', 'like_count') }} as like_value,
        {{ json_lookup('raw', 'comment_count') }} as comment_value,
        {{ json_lookup('raw', 'share_count') }} as share_value,
        {{ json_lookup('raw', 'retweet_count') }} as retweet_value,
        {{ json_lookup('raw', 'view_count') }} as view_value,
        {{ json_lookup('raw', 'play_count') }} as play_value,
        {{ json_lookup('raw', 'media') }} as media
    from versions
),

measures as (
    select
        *,
        case when partition_network = 'x' then retweet_value else share_value end as shares_value,
        case when partition_network = 'tiktok' then play_value else view_value end as views_value,
        {{ parse_count(json_text('raw', 'media_count')) }} as media_count,
        coalesce(jsonb_array_length(case when jsonb_typeof(media) = 'array' then media end), 0) as media_items
    from latest
)

select
    partition_network as network,
    post_id,
    partition_date as post_date,
    account_id,
    created_at,
    scraped_at,
    coalesce({{ json_text('raw', 'caption') }}, {{ json_text('raw', 'text') }}) as post_text,
    {{ json_text('raw', 'title') }} as title,
    {{ json_text('raw', 'topic') }} as topic,
    {{ json_array('raw', 'hashtags') }} as hashtags,
    {{ parse_count(jsonb_text('like_value')) }} as likes,
    {{ parse_count(jsonb_text('comment_value')) }} as comments,
    {{ parse_count(jsonb_text('shares_value')) }} as shares,
    {{ parse_count(jsonb_text('views_value')) }} as views,
    media_count,
    media_items,
    (media_count is distinct from media_items) as media_count_mismatch,
    (
        {{ is_count_string('like_value') }} or {{ is_count_string('comment_value') }}
        or {{ is_count_string('shares_value') }} or {{ is_count_string('views_value') }}
    ) is true as counts_from_text,
    versions_seen,
    load_id,
    source_file,
    record_number
from measures
