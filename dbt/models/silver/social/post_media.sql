{{
    config(
        materialized='incremental',
        unique_key=['network', 'post_id', 'media_index'],
        meta={
            'dagster': {'partitioning': 'date_network'},
            'partition_columns': {'date': 'post_date', 'network': 'network'},
        },
    )
}}

-- One row per media item of the winning version of each post. A missing media_type is inferred from the
-- content URL's extension (.jpg/.png -> image, .mp4 -> video), else 'unknown'; both cases are flagged.

with posts as (
    select
        network,
        post_id,
        post_date,
        load_id,
        record_number
    from {{ ref('posts') }}
    where {{ partition_filter('post_date', 'network') }}
),

items as (
    select
        posts.network,
        posts.post_id,
        posts.post_date,
        media.item,
        (media.position - 1)::integer as media_index
    from posts
    inner join {{ source('bronze', 'social_posts') }} as bronze
        on
            posts.load_id = bronze.load_id
            and posts.record_number = bronze.record_number
    cross join lateral jsonb_array_elements({{ json_array('bronze.raw', 'media') }}) with ordinality as media (item, position)
),

typed as (
    select
        network,
        post_id,
        post_date,
        media_index,
        nullif(lower(trim({{ json_text('item', 'media_type') }})), '') as stated_type,
        {{ json_text('item', 'content_url') }} as content_url,
        {{ json_text('item', 'thumbnail_url') }} as thumbnail_url
    from items
)

select
    network,
    post_id,
    post_date,
    media_index,
    coalesce(stated_type, {{ media_type_from_url('content_url') }}, 'unknown') as media_type,
    stated_type is null as media_type_inferred,
    stated_type is null and {{ media_type_from_url('content_url') }} is null as media_type_unknown,
    content_url,
    thumbnail_url
from typed
