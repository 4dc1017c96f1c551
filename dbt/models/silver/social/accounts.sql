-- Creator accounts as SCD2 from the daily full snapshots. A version starts when any tracked attribute differs
-- from the account's previous snapshot, or when the account comes back after missing a snapshot. It ends
-- (valid_to, exclusive) at the next snapshot that no longer shows it: the next version's valid_from, or the
-- first snapshot the account is missing from (it disappeared). Versions still in the latest snapshot are
-- current. Rebuilt from all snapshots (silver.account_snapshots), so a late or re-loaded day is never applied out
-- of order.
-- An account that posts name before any snapshot shows it is a late-arriving dimension: it is kept as an inferred
-- member (Kimball) — current, attributes unknown, is_inferred, first_seen_at the first scrape naming it — so its
-- posts reach silver and gold at once, and the account's first snapshot replaces it at the next build.

with snapshot_rows as (
    select * from {{ ref('account_snapshots') }}
),

snapshot_days as (
    select
        snapshot_date,
        row_number() over (order by snapshot_date) as day_number
    from (select distinct snapshot_date from snapshot_rows) as distinct_dates
),

daily as (
    select
        snapshot_rows.*,
        snapshot_days.day_number
    from snapshot_rows
    inner join snapshot_days on snapshot_rows.snapshot_date = snapshot_days.snapshot_date
),

flagged as (
    select
        *,
        lag(attributes_hash) over (partition by account_id order by snapshot_date) as previous_hash,
        lag(day_number) over (partition by account_id order by snapshot_date) as previous_day_number
    from daily
),

changes as (
    select
        *,
        case
            when previous_hash is null or previous_hash <> attributes_hash then 1
            when previous_day_number <> day_number - 1 then 1
            else 0
        end as starts_version
    from flagged
),

numbered as (
    select
        *,
        sum(starts_version) over (partition by account_id order by snapshot_date) as version_number
    from changes
),

versions as (
    select
        account_id,
        version_number,
        min(snapshot_date) as valid_from,
        max(day_number) as last_day_number
    from numbered
    group by account_id, version_number
),

inferred as (
    select
        posts.account_id,
        min(posts.partition_network) as network,
        min(posts.scraped_at) as first_seen_at
    from {{ source('bronze', 'social_posts') }} as posts
    where
        posts.account_id is not null
        and not exists (
            select from snapshot_rows
            where snapshot_rows.account_id = posts.account_id
        )
    group by posts.account_id
)

select
    numbered.account_id,
    numbered.network,
    numbered.handle,
    numbered.display_name_hash,
    numbered.category,
    numbered.followers,
    numbered.following,
    numbered.account_created_at,
    versions.version_number::integer as version_number,
    versions.valid_from,
    next_day.snapshot_date as valid_to,
    next_day.snapshot_date is null as is_current,
    numbered.attributes_hash,
    false as is_inferred,
    null::timestamptz as first_seen_at
from versions
inner join numbered
    on
        versions.account_id = numbered.account_id
        and versions.valid_from = numbered.snapshot_date
left join snapshot_days as next_day on versions.last_day_number + 1 = next_day.day_number

union all

select
    account_id,
    network,
    null as handle,
    null as display_name_hash,
    null as category,
    null::bigint as followers,
    null::bigint as following,
    null::timestamptz as account_created_at,
    0 as version_number,
    first_seen_at::date as valid_from,
    null::date as valid_to,
    true as is_current,
    null as attributes_hash,
    true as is_inferred,
    first_seen_at
from inferred
