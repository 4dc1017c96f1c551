{{
    config(
        unique_key=['as_of_date', 'network', 'account_id'],
        meta={'partition_columns': {'date': 'as_of_date', 'network': 'network'}},
    )
}}

-- Creators ranked per network and day on rolling 7- and 30-day windows ending that day (inclusive), over
-- account_daily_engagement. Every account with a post in the 30 days is listed; ranks order by interactions
-- (then account_id, so they are unique and deterministic).

{%- set windows = [7, 30] %}

with as_of_days as (
    select distinct
        post_date as as_of_date,
        network
    from {{ ref('account_daily_engagement') }}
    where {{ partition_filter('post_date', 'network') }}
),

history as (
    select *
    from {{ ref('account_daily_engagement') }}
    where {{ partition_filter('post_date', 'network', lookback_days=windows | max - 1) }}
),

windows as (
    select
        as_of_days.as_of_date,
        as_of_days.network,
        {% for days in windows %}
            {% for measure in ['posts', 'interactions', 'views'] %}
                coalesce(
                    sum(history.{{ measure }}) filter (where history.post_date > as_of_days.as_of_date - {{ days }}),
                    0
                ) as {{ measure }}_{{ days }}d,
            {% endfor %}
        {% endfor %}
        history.account_id
    from as_of_days
    inner join history
        on
            as_of_days.network = history.network
            and history.post_date > as_of_days.as_of_date - {{ windows | max }}
            and as_of_days.as_of_date >= history.post_date
    group by as_of_days.as_of_date, as_of_days.network, history.account_id
)

select
    as_of_date,
    network,
    {% for days in windows %}
        posts_{{ days }}d::bigint as posts_{{ days }}d,
        interactions_{{ days }}d::bigint as interactions_{{ days }}d,
        views_{{ days }}d::bigint as views_{{ days }}d,
        {{ engagement_rate('interactions_' ~ days ~ 'd', 'views_' ~ days ~ 'd') }} as engagement_rate_{{ days }}d,
        row_number() over (
            partition by as_of_date, network order by interactions_{{ days }}d desc, account_id asc
        )::integer as rank_{{ days }}d,
    {% endfor %}
    account_id
from windows
