-- The daily full snapshots of creator accounts, typed: one row per account and snapshot day, the latest load of
-- the day winning. silver.accounts builds its SCD2 versions from these rows, so a snapshot row a row rule drops
-- (an unknown network, say) never becomes a version. Rebuilt from all snapshots in bronze, like accounts.

with latest as (
    {{ latest_load_wins(source('bronze', 'social_accounts'), ['account_id', 'partition_date']) }}
)

select
    partition_date as snapshot_date,
    account_id,
    network,
    handle,
    {{ pii_hash("raw ->> 'display_name'") }} as display_name_hash,
    nullif(trim(raw ->> 'category'), '') as category,
    {{ parse_count("raw ->> 'followers'") }} as followers,
    {{ parse_count("raw ->> 'following'") }} as following,
    (raw ->> 'created_at')::timestamptz as account_created_at,
    md5(
        concat_ws(
            '|', network, handle, raw ->> 'display_name', raw ->> 'category', raw ->> 'followers',
            raw ->> 'following', raw ->> 'created_at'
        )
    ) as attributes_hash,
    load_id,
    source_file,
    record_number
from latest
