{{ config(materialized='table', meta={'dagster': {'partitioning': 'none'}}) }}

-- Campaign documents of the operational MongoDB, latest version per campaign_id (by updated_at, then load).

with ranked as (
    select
        campaign_id,
        updated_at,
        raw,
        load_id,
        record_number,
        row_number() over (
            partition by campaign_id
            order by updated_at desc nulls last, load_id desc, record_number desc
        ) as version_rank,
        count(*) over (partition by campaign_id) as versions_seen
    from {{ source('bronze', 'mongo_campaigns') }}
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
from ranked
where version_rank = 1
