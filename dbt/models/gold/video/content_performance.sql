-- Per catalogue item: sessions, viewers, watch time and completion (capped completion, see video_sessions).
-- A session is complete at completion_rate >= 0.9.

with sessions as (
    select
        content_id,
        count(*) as sessions,
        count(distinct user_id) as viewers,
        coalesce(sum(watch_seconds), 0) as watch_seconds,
        avg(completion_pct) / 100 as avg_completion_rate,
        count(*) filter (where completion_rate >= 0.9) as completed_sessions,
        count(*) filter (where completion_capped) as capped_sessions
    from {{ ref('video_sessions') }}
    group by content_id
)

select
    catalogue.content_id,
    catalogue.title,
    catalogue.genre,
    catalogue.duration_seconds,
    sessions.avg_completion_rate::double precision as avg_completion_rate,
    coalesce(sessions.sessions, 0)::bigint as sessions,
    coalesce(sessions.viewers, 0)::bigint as viewers,
    coalesce(sessions.watch_seconds, 0)::bigint as watch_seconds,
    coalesce(sessions.completed_sessions, 0)::bigint as completed_sessions,
    (sessions.completed_sessions::double precision / nullif(sessions.sessions, 0)) as completion_share,
    coalesce(sessions.capped_sessions, 0)::bigint as capped_sessions
from {{ ref('video_content') }} as catalogue
left join sessions on catalogue.content_id = sessions.content_id
