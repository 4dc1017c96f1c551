{{
    config(
        materialized='incremental',
        unique_key=['tweet_id'],
        meta={'dagster': {'partitioning': 'daily'}, 'partition_columns': {'date': 'tweet_date'}},
    )
}}

-- Brand-listening tweets, one row per status id (the latest load wins). The author's name is PII: hashed.

with latest as (
    {{ latest_load_wins(source('bronze', 'tweets'), 'tweet_id', where=partition_filter('partition_date')) }}
)

select
    tweet_id,
    partition_date as tweet_date,
    created_at,
    {{ json_text('raw', 'full_text') }} as full_text,
    {{ json_text('raw', 'lang') }} as lang,
    raw #>> '{user,id_str}' as user_id,
    raw #>> '{user,screen_name}' as user_screen_name,
    {{ pii_hash("raw #>> '{user,name}'") }} as user_name_hash,
    {{ parse_count("raw #>> '{user,followers_count}'") }} as user_followers,
    coalesce((raw #>> '{user,verified}')::boolean, false) as user_verified,
    coalesce(({{ json_text('raw', 'retweeted') }})::boolean, false) as is_retweet,
    coalesce({{ parse_count(json_text('raw', 'retweet_count')) }}, 0) as retweet_count,
    coalesce({{ parse_count(json_text('raw', 'favorite_count')) }}, 0) as favorite_count,
    array(
        select distinct lower(tag.entry ->> 'text')
        from
            jsonb_array_elements(
                case
                    when jsonb_typeof(latest.raw #> '{entities,hashtags}') = 'array'
                        then latest.raw #> '{entities,hashtags}'
                    else '[]'::jsonb
                end
            ) as tag (entry)
        where nullif(tag.entry ->> 'text', '') is not null
        order by lower(tag.entry ->> 'text')
    ) as hashtags,
    load_id,
    record_number
from latest
