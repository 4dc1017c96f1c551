{{
    config(
        materialized='incremental',
        unique_key=['tweet_id'],
        meta={'dagster': {'partitioning': 'daily'}, 'partition_columns': {'date': 'tweet_date'}},
    )
}}

-- Brand-listening tweets, one row per tweet id whichever way it arrived: in the v1.1 search responses that land
-- as files (bronze.tweets, a user object in each status) or in the v2 pages pulled from the recent search
-- (bronze.x_recent_search, the author from includes.users embedded in each tweet). The latest load wins across
-- both: load ids come from one ledger. The author's name is PII: hashed.

with arrived as (
    select
        tweet_id,
        partition_date,
        created_at,
        {{ json_text('raw', 'full_text') }} as full_text,
        {{ json_text('raw', 'lang') }} as lang,
        raw #>> '{user,id_str}' as user_id,
        raw #>> '{user,screen_name}' as user_screen_name,
        raw #>> '{user,name}' as user_name,
        raw #>> '{user,followers_count}' as user_followers,
        raw #>> '{user,verified}' as user_verified,
        {{ json_text('raw', 'retweeted') }} as is_retweet,
        {{ json_text('raw', 'retweet_count') }} as retweet_count,
        {{ json_text('raw', 'favorite_count') }} as favorite_count,
        {{ hashtag_texts('raw', 'text') }} as hashtags,
        load_id,
        record_number
    from {{ source('bronze', 'tweets') }}
    where {{ partition_filter('partition_date') }}

    union all

    select
        tweet_id,
        partition_date,
        created_at,
        raw ->> 'text' as full_text,
        raw ->> 'lang' as lang,
        coalesce(raw #>> '{author,id}', author_id) as user_id,
        raw #>> '{author,username}' as user_screen_name,
        raw #>> '{author,name}' as user_name,
        raw #>> '{author,public_metrics,followers_count}' as user_followers,
        raw #>> '{author,verified}' as user_verified,
        jsonb_path_exists(raw, '$.referenced_tweets[*] ? (@.type == "retweeted")')::text as is_retweet,
        raw #>> '{public_metrics,retweet_count}' as retweet_count,
        raw #>> '{public_metrics,like_count}' as favorite_count,
        {{ hashtag_texts('raw', 'tag') }} as hashtags,
        load_id,
        record_number
    from {{ source('bronze', 'x_recent_search') }}
    where {{ partition_filter('partition_date') }}
),

latest as (
    {{ latest_load_wins('arrived', 'tweet_id') }}
)

select
    tweet_id,
    partition_date as tweet_date,
    created_at,
    full_text,
    lang,
    user_id,
    user_screen_name,
    {{ pii_hash('user_name') }} as user_name_hash,
    {{ parse_count('user_followers') }} as user_followers,
    coalesce(user_verified::boolean, false) as user_verified,
    coalesce(is_retweet::boolean, false) as is_retweet,
    coalesce({{ parse_count('retweet_count') }}, 0) as retweet_count,
    coalesce({{ parse_count('favorite_count') }}, 0) as favorite_count,
    array(
        select distinct lower(tag.hashtag)
        from unnest(latest.hashtags) as tag (hashtag)
        where nullif(tag.hashtag, '') is not null
        order by lower(tag.hashtag)
    ) as hashtags,
    load_id,
    record_number
from latest
