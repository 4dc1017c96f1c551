{{
    config(
        materialized='incremental',
        unique_key=['session_id'],
        meta={'dagster': {'partitioning': 'daily'}, 'partition_columns': {'date': 'session_date'}},
    )
}}

-- Viewing sessions, one row per session id. Players count rewinds as watch time, so the reported completion
-- can exceed 100%: silver caps it at 100% (completion_rate <= 1) and flags the session.

with latest as (
    {{ latest_load_wins(source('bronze', 'video_sessions'), 'session_id', where=partition_filter('partition_date')) }}
),

typed as (
    select
        session_id,
        partition_date as session_date,
        user_id,
        content_id,
        started_at,
        {{ parse_count(json_text('raw', 'watch_seconds')) }} as watch_seconds,
        {{ parse_count(json_text('raw', 'content_duration_seconds')) }} as content_duration_seconds,
        nullif(trim({{ json_text('raw', 'completion_pct') }}), '')::numeric as reported_completion_pct,
        load_id,
        record_number
    from latest
)

select
    session_id,
    session_date,
    user_id,
    content_id,
    started_at,
    watch_seconds,
    content_duration_seconds,
    reported_completion_pct,
    load_id,
    record_number,
    least(reported_completion_pct, 100)::numeric(5, 1) as completion_pct,
    (least(reported_completion_pct, 100) / 100)::double precision as completion_rate,
    coalesce(reported_completion_pct > 100, false) as completion_capped
from typed
