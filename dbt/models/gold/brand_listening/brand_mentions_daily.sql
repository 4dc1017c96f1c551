{{
    config(
        materialized='incremental',
        unique_key=['mention_date', 'brand_tag'],
        meta={'dagster': {'partitioning': 'daily'}, 'partition_columns': {'date': 'mention_date'}},
    )
}}

-- Brand mentions per day: tweets carrying a brand's hashtag (the brand name's first word, lower-cased, as in
-- #northwind), counted once per tweet and tag.

with brand_tags as (
    select distinct brand_tag
    from {{ ref('brands') }}
    where nullif(brand_tag, '') is not null
),

mentions as (
    select
        tweets.tweet_date as mention_date,
        brand_tags.brand_tag,
        tweets.tweet_id,
        tweets.user_id,
        tweets.is_retweet,
        tweets.favorite_count,
        tweets.retweet_count,
        tweets.user_followers
    from {{ ref('tweets') }} as tweets
    cross join lateral unnest(tweets.hashtags) as tag (hashtag)
    inner join brand_tags on tag.hashtag = brand_tags.brand_tag
    where {{ partition_filter('tweets.tweet_date') }}
)

select
    mention_date,
    brand_tag,
    count(*)::bigint as mentions,
    (count(*) filter (where not is_retweet))::bigint as original_tweets,
    (count(*) filter (where is_retweet))::bigint as retweets,
    count(distinct user_id)::bigint as authors,
    coalesce(sum(favorite_count), 0)::bigint as favorites,
    coalesce(sum(retweet_count), 0)::bigint as retweet_count,
    coalesce(sum(user_followers), 0)::bigint as potential_reach
from mentions
group by mention_date, brand_tag
