{{
    config(
        materialized='incremental',
        unique_key=['session_date', 'subscription_tier'],
        meta={'dagster': {'partitioning': 'daily'}, 'partition_columns': {'date': 'session_date'}},
    )
}}

-- Completion of viewing sessions per day and subscription tier (users unknown to video_users: 'unknown').

with sessions as (
    select
        sessions.session_date,
        sessions.user_id,
        sessions.watch_seconds,
        sessions.completion_rate,
        sessions.completion_pct,
        sessions.completion_capped,
        coalesce(video_users.subscription_tier, 'unknown') as subscription_tier
    from {{ ref('video_sessions') }} as sessions
    left join {{ ref('video_users') }} as video_users on sessions.user_id = video_users.user_id
    where {{ partition_filter('sessions.session_date') }}
)

select
    session_date,
    subscription_tier,
    count(*)::bigint as sessions,
    count(distinct user_id)::bigint as viewers,
    coalesce(sum(watch_seconds), 0)::bigint as watch_seconds,
    (avg(completion_pct) / 100)::double precision as avg_completion_rate,
    (percentile_cont(0.5) within group (order by completion_rate))::double precision as median_completion_rate,
    (count(*) filter (where completion_rate >= 0.9))::bigint as completed_sessions,
    ((count(*) filter (where completion_rate >= 0.9))::double precision / count(*)) as completion_share,
    (count(*) filter (where completion_capped))::bigint as capped_sessions
from sessions
group by session_date, subscription_tier
