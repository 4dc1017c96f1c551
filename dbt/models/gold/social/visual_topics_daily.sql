{{
    config(
        materialized='table',
        meta={'dagster': {'partitioning': 'none'}},
    )
}}

-- What the posts of each network and day show: per label on their media (the newest model's labels, media
-- known to silver), the posts showing it and those posts' interactions (likes + comments + shares). The ten
-- labels with the most interactions per network and day, ranked (ties by label). Rebuilt whole: labels of an
-- old day's posts may land any day.

with labelled_posts as (
    select distinct
        network,
        post_id,
        label
    from {{ ref('image_labels') }}
    where media_known
),

topics as (
    select
        posts.post_date,
        posts.network,
        labelled_posts.label,
        count(*)::bigint as posts,
        sum(coalesce(posts.likes, 0) + coalesce(posts.comments, 0) + coalesce(posts.shares, 0))::bigint
            as interactions
    from labelled_posts
    inner join {{ ref('posts') }} as posts
        on labelled_posts.network = posts.network and labelled_posts.post_id = posts.post_id
    group by posts.post_date, posts.network, labelled_posts.label
),

ranked as (
    select
        *,
        row_number() over (partition by post_date, network order by interactions desc, label asc) as topic_rank
    from topics
)

select
    post_date,
    network,
    topic_rank::integer as topic_rank,
    label,
    posts,
    interactions
from ranked
where topic_rank <= 10
