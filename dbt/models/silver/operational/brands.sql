-- The operational `brands` table rebuilt from its CDC feed, Qlik Replicate style. A full load is a snapshot:
-- the table's first at the folder's root (cdc/brands/LOAD*.csv), each reload in a folder named for the moment
-- it started (cdc/brands/<YYYYMMDD-HHMMSSmmm>/LOAD*.csv). Only the snapshot that started last counts, and
-- only the changes captured from its start on: an older change, in whatever order its file lands, is already
-- in that snapshot or was overtaken while capture was down. Among those, per key, the I/U/D event with the
-- highest header__change_seq wins, snapshot rows ranking below every change (changes made while a full load
-- ran are in both, and count once); B rows (before-images) never apply; a winning D means the key is absent.

with cdc_rows as (
    select
        brand_id,
        raw,
        load_id,
        record_number,
        header__change_oper as change_oper,
        header__change_seq::numeric(38, 0) as change_seq,
        header__timestamp as changed_at,
        -- A snapshot's start on the header__change_seq scale (its timestamp digits, then a zero counter); the
        -- first full load starts before every change.
        case
            when header__change_oper is null
                then coalesce(
                    rpad(
                        replace(substring(source_file from '/(\d{8}-\d{9})/[^/]+$'), '-', ''), 35, '0'
                    )::numeric(38, 0),
                    0
                )
        end as snapshot_start
    from {{ source('bronze', 'cdc_brands') }}
    where
        header__change_oper is null
        or header__change_oper in ('I', 'U', 'D')
),

current_snapshot as (
    select coalesce(max(snapshot_start), 0) as started
    from cdc_rows
),

events as (
    select cdc_rows.*
    from cdc_rows
    cross join current_snapshot
    where
        cdc_rows.snapshot_start = current_snapshot.started
        or cdc_rows.change_seq >= current_snapshot.started
),

latest as (
    {{ latest_load_wins('events', 'brand_id', version_column='change_seq') }}
)

select
    brand_id,
    {{ json_text('raw', 'name') }} as brand_name,
    {{ json_text('raw', 'category') }} as category,
    {{ json_text('raw', 'country') }} as country,
    lower({{ json_text('raw', 'is_active') }})::boolean as is_active,
    nullif({{ json_text('raw', 'updated_at') }}, '')::timestamp as updated_at,
    lower(split_part({{ json_text('raw', 'name') }}, ' ', 1)) as brand_tag,
    coalesce(change_oper, 'L') as last_change_oper,
    change_seq as last_change_seq,
    changed_at as last_changed_at
from latest
where change_oper is distinct from 'D'
