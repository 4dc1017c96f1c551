{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['session_id'],
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_partition_window('session_date') }}",
        meta={'dagster': {'partitioning': 'daily'}},
    )
}}

-- Viewing sessions, one row per session id. Players count rewinds as watch time, so the reported completion
-- can exceed 100%: silver caps it at 100% (completion_rate <= 1) and flags the session.

with ranked as (
    select
        partition_date,
        session_id,
        user_id,
        content_id,
        started_at,
        raw,
        load_id,
        record_number,
        row_number() over (partition by session_id order by load_id desc, record_number desc) as row_rank
    from {{ source('bronze', 'video_sessions') }}
    where {{ partition_filter('partition_date') }}
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
    from ranked
    where row_rank = 1
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
