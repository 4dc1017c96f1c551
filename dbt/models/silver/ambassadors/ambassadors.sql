{{ config(materialized='table', meta={'dagster': {'partitioning': 'none'}}) }}

-- One row per ambassador (latest load wins). Name, email and social handles are PII: only salted hashes pass.

with ranked as (
    select
        user_id,
        joined_at,
        raw,
        load_id,
        record_number,
        row_number() over (partition by user_id order by load_id desc, record_number desc) as row_rank
    from {{ source('bronze', 'ambassadors') }}
)

select
    user_id,
    {{ pii_hash(json_text('raw', 'name')) }} as name_hash,
    {{ pii_hash(json_text('raw', 'email')) }} as email_hash,
    {{ pii_hash(json_text('raw', 'instagram_handle')) }} as instagram_handle_hash,
    {{ pii_hash(json_text('raw', 'tiktok_handle')) }} as tiktok_handle_hash,
    joined_at,
    coalesce(jsonb_array_length(
        case when jsonb_typeof({{ json_lookup('raw', 'programs') }}) = 'array' then {{ json_lookup('raw', 'programs') }} end
    ), 0) as program_count,
    load_id,
    record_number
from ranked
where row_rank = 1
