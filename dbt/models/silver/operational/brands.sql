-- The operational `brands` table rebuilt from its CDC feed. Per key, the event with the highest
-- header__change_seq among I/U/D wins; LOAD snapshot rows (no header) are older than every change; B rows
-- (before-images) are never applied; a winning D means the key is absent. Because the winner is chosen by
-- sequence, file arrival order does not matter, an older change never resurrects a deleted key, and changes
-- that overlap the snapshot are not applied twice.

with events as (
    select
        brand_id,
        header__change_oper as change_oper,
        header__change_seq::numeric(38, 0) as change_seq,
        header__timestamp as changed_at,
        raw,
        load_id,
        record_number
    from {{ source('bronze', 'cdc_brands') }}
    where
        header__change_oper is null
        or header__change_oper in ('I', 'U', 'D')
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
