{{ config(materialized='table', meta={'dagster': {'partitioning': 'none'}}) }}

-- Viewers of the video service, one row per user (latest load wins). Name and email only as salted hashes.

with ranked as (
    select
        user_id,
        raw,
        load_id,
        record_number,
        row_number() over (partition by user_id order by load_id desc, record_number desc) as row_rank
    from {{ source('bronze', 'video_users') }}
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
from ranked
where row_rank = 1
