{{
    config(
        unique_key=['post_date', 'network'],
        meta={'partition_columns': {'date': 'post_date', 'network': 'network'}},
    )
}}

-- How often a post's declared media_count disagrees with the media items it carries, per day of posting and
-- network: the measure of what silver flags per post (media_count_mismatch). One row per partition, so the
-- table is the rate's history.

select
    post_date,
    network,
    count(*)::bigint as posts,
    (count(*) filter (where media_count_mismatch))::bigint as media_count_mismatches,
    ((count(*) filter (where media_count_mismatch))::double precision / count(*)) as mismatch_rate
from {{ ref('posts') }}
where {{ partition_filter('post_date', 'network') }}
group by post_date, network
