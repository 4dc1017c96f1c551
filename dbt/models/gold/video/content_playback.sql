{{
    config(
        materialized='incremental',
        unique_key=['event_date', 'content_id'],
        meta={'dagster': {'partitioning': 'daily'}, 'partition_columns': {'date': 'event_date'}},
    )
}}

-- Playback per day and content item from the player's own events: sessions started, completed and stopped
-- early, distinct viewers and every event counted once (a session crossing midnight counts on both days).

select
    event_date,
    content_id,
    count(*)::bigint as events,
    (count(*) filter (where event_type = 'start'))::bigint as sessions_started,
    (count(*) filter (where event_type = 'complete'))::bigint as sessions_completed,
    (count(*) filter (where event_type = 'stop'))::bigint as sessions_stopped,
    count(distinct user_id)::bigint as viewers,
    count(distinct session_id)::bigint as sessions
from {{ ref('playback_events') }}
where {{ partition_filter('event_date') }}
group by event_date, content_id
