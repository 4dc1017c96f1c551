-- The video catalogue, one row per content id (latest load wins). Credited people's names are PII: only the
-- roles and a count are kept.

with latest as (
    {{ latest_load_wins(source('bronze', 'video_content'), 'content_id') }}
)

select
    content_id,
    {{ json_text('raw', 'title') }} as title,
    {{ json_text('raw', 'description') }} as description,
    published_at,
    {{ parse_count(json_text('raw', 'duration_seconds')) }} as duration_seconds,
    raw #>> '{metadata,genre}' as genre,
    raw #>> '{metadata,language}' as content_language,
    coalesce(
        case when jsonb_typeof(raw #> '{metadata,tags}') = 'array' then raw #> '{metadata,tags}' end, '[]'::jsonb
    ) as tags,
    coalesce(
        (
            select jsonb_agg(distinct credit.entry ->> 'role')
            from jsonb_array_elements(
                case when jsonb_typeof(latest.raw -> 'credits') = 'array' then latest.raw -> 'credits' end
            ) as credit (entry)
        ),
        '[]'::jsonb
    ) as credit_roles,
    coalesce(jsonb_array_length(
        case when jsonb_typeof(raw -> 'credits') = 'array' then raw -> 'credits' end
    ), 0) as credit_count,
    load_id,
    record_number
from latest
