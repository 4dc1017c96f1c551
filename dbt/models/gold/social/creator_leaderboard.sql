{{
    config(
        materialized='incremental',
        unique_key=['as_of_date', 'network', 'account_id'],
        meta={
            'dagster': {'partitioning': 'date_network'},
            'partition_columns': {'date': 'as_of_date', 'network': 'network'},
        },
    )
}}

-- Creators ranked per network and day on rolling 7- and 30-day windows ending that day (inclusive), over
-- account_daily_engagement. Every account with a post in the 30 days is listed; ranks order by interactions
-- (then account_id, so they are unique and deterministic).

with as_of_days as (
    select distinct
        post_date as as_of_date,
        network
    from {{ ref('account_daily_engagement') }}
    where {{ partition_filter('post_date', 'network') }}
),

history as (
    select *
    from {{ ref('account_daily_engagement') }}
    where {{ partition_filter('post_date', 'network', lookback_days=29) }}
),

windows as (
    select
        as_of_days.as_of_date,
        as_of_days.network,
        history.account_id,
        coalesce(sum(history.posts) filter (where history.post_date > as_of_days.as_of_date - 7), 0) as posts_7d,
        coalesce(
            sum(history.interactions) filter (where history.post_date > as_of_days.as_of_date - 7), 0
        ) as interactions_7d,
        coalesce(sum(history.views) filter (where history.post_date > as_of_days.as_of_date - 7), 0) as views_7d,
        sum(history.posts) as posts_30d,
        sum(history.interactions) as interactions_30d,
        sum(history.views) as views_30d
    from as_of_days
    inner join history
        on
            as_of_days.network = history.network
            and history.post_date > as_of_days.as_of_date - 30
            and as_of_days.as_of_date >= history.post_date
    group by as_of_days.as_of_date, as_of_days.network, history.account_id
)

select
    as_of_date,
    network,
    account_id,
    posts_7d::bigint as posts_7d,
    interactions_7d::bigint as interactions_7d,
    views_7d::bigint as views_7d,
    {{ engagement_rate('interactions_7d', 'views_7d') }} as engagement_rate_7d,
    row_number() over (
        partition by as_of_date, network order by interactions_7d desc, account_id asc
    )::integer as rank_7d,
    posts_30d::bigint as posts_30d,
    interactions_30d::bigint as interactions_30d,
    views_30d::bigint as views_30d,
    {{ engagement_rate('interactions_30d', 'views_30d') }} as engagement_rate_30d,
    row_number() over (
        partition by as_of_date, network order by interactions_30d desc, account_id asc
    )::integer as rank_30d
from windows
