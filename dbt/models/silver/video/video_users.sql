-- Viewers of the video service, one row per user (latest load wins). Name and email only as salted hashes.

with latest as (
    {{ latest_load_wins(source('bronze', 'video_users'), 'user_id') }}
)

select
    user_id,
    {{ pii_hash(json_text('raw', 'name')) }} as name_hash,
    {{ pii_hash(json_text('raw', 'email')) }} as email_hash,
    upper(nullif(trim({{ json_text('raw', 'country') }}), '')) as country,
    nullif(trim({{ json_text('raw', 'signup_date') }}), '')::date as signup_date,
    lower(nullif(trim({{ json_text('raw', 'subscription_tier') }}), '')) as subscription_tier,
    load_id,
    record_number
from latest
