-- Campaign documents of the operational MongoDB, latest version per campaign_id (by updated_at, then load).

with latest as (
    {{
        latest_load_wins(
            source('bronze', 'mongo_campaigns'), 'campaign_id', version_column='updated_at', count_versions=true
        )
    }}
)

select
    campaign_id,
    {{ json_text('raw', 'brand_id') }} as brand_id,
    {{ json_text('raw', 'name') }} as campaign_name,
    lower({{ json_text('raw', 'status') }}) as status,
    ({{ json_text('raw', 'budget') }})::numeric(14, 2) as budget,
    left({{ json_text('raw', 'start_date') }}, 10)::date as start_date,
    left({{ json_text('raw', 'end_date') }}, 10)::date as end_date,
    updated_at,
    versions_seen
from latest
