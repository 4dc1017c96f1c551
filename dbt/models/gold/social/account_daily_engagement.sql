{{
    config(
        unique_key=['post_date', 'network', 'account_id'],
        meta={'partition_columns': {'date': 'post_date', 'network': 'network'}},
    )
}}

-- Engagement per account, network and day of posting, over deduplicated posts. engagement_rate is defined in
-- the yml: interactions / views, capped at 1, null when there are no views.

with daily as (
    select
        post_date,
        network,
        account_id,
        count(*) as posts,
        coalesce(sum(likes), 0) as likes,
        coalesce(sum(comments), 0) as comments,
        coalesce(sum(shares), 0) as shares,
        coalesce(sum(views), 0) as views
    from {{ ref('posts') }}
    where {{ partition_filter('post_date', 'network') }}
    group by post_date, network, account_id
)

select
    post_date,
    network,
    account_id,
    posts::bigint as posts,
    likes::bigint as likes,
    comments::bigint as comments,
    shares::bigint as shares,
    views::bigint as views,
    (likes + comments + shares)::bigint as interactions,
    {{ engagement_rate('likes + comments + shares', 'views') }} as engagement_rate,
    coalesce(views > 0 and likes + comments + shares > views, false) as engagement_rate_capped
from daily
