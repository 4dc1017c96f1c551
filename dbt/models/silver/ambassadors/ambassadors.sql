-- One row per ambassador (latest load wins). Name, email and social handles are PII: only salted hashes pass.

with latest as (
    {{ latest_load_wins(source('bronze', 'ambassadors'), 'user_id') }}
)

select
    user_id,
    {{ pii_hash(json_text('raw', 'name')) }} as name_hash,
    {{ pii_hash(json_text('raw', 'email')) }} as email_hash,
    {{ pii_hash(json_text('raw', 'instagram_handle')) }} as instagram_handle_hash,
    {{ pii_hash(json_text('raw', 'tiktok_handle')) }} as tiktok_handle_hash,
    joined_at,
    jsonb_array_length({{ json_array('raw', 'programs') }}) as program_count,
    load_id,
    record_number
from latest
