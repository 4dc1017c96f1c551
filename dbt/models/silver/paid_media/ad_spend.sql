{{
    config(
        materialized='incremental',
        unique_key=['spend_date', 'campaign_id', 'network'],
        meta={
            'dagster': {'partitioning': 'daily', 'freshness': {'warn_hours': 26, 'fail_hours': 50}},
            'partition_columns': {'date': 'spend_date'},
        },
    )
}}

-- Paid-media spend per campaign, network and day, from the vendor's daily report; it comes once a day, so it is
-- fresh for a day and two hours. A day the vendor re-sends replaces its first version in bronze already (same
-- file name, new bytes); the latest load still wins here.

with latest as (
    {{
        latest_load_wins(
            source('bronze', 'dmap_ad_spend'),
            ['partition_date', 'campaign_id', 'network'],
            where=partition_filter('partition_date'),
        )
    }}
)

select
    partition_date as spend_date,
    campaign_id,
    network,
    {{ parse_count(json_text('raw', 'impressions')) }} as impressions,
    {{ parse_count(json_text('raw', 'clicks')) }} as clicks,
    nullif(trim({{ json_text('raw', 'spend_usd') }}), '')::numeric(14, 2) as spend_usd,
    load_id,
    record_number
from latest
