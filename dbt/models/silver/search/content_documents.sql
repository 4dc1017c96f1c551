-- Everything semantic search covers, one row per post, tweet and video: the text the model embeds and the
-- payload search filters on (a post's labels are what the vision service saw in its media). The vector index
-- (vector/content_index) syncs Qdrant to this table.

with post_labels as (
    select
        network,
        post_id,
        array_agg(distinct label order by label) as labels
    from {{ ref('image_labels') }}
    where media_known
    group by network, post_id
),

post_documents as (
    select
        'post:' || posts.network || ':' || posts.post_id as document_key,
        'post' as source_type,
        concat_ws(
            ' ',
            posts.title,
            posts.post_text,
            (select string_agg('#' || tag.value, ' ') from jsonb_array_elements_text(posts.hashtags) as tag)
        ) as content_text,
        posts.network,
        posts.account_id,
        posts.post_date as created_date,
        coalesce(posts.likes, 0) + coalesce(posts.comments, 0) + coalesce(posts.shares, 0) as engagement,
        coalesce(post_labels.labels, '{}') as labels
    from {{ ref('posts') }} as posts
    left join post_labels on posts.network = post_labels.network and posts.post_id = post_labels.post_id
),

tweet_documents as (
    select
        'tweet:' || tweet_id as document_key,
        'tweet' as source_type,
        full_text as content_text,
        'x' as network,
        user_id as account_id,
        tweet_date as created_date,
        retweet_count + favorite_count as engagement,
        '{}'::text[] as labels
    from {{ ref('tweets') }}
),

video_views as (
    select
        content_id,
        count(*) as sessions
    from {{ ref('video_sessions') }}
    group by content_id
),

video_documents as (
    select
        'video:' || catalogue.content_id as document_key,
        'video' as source_type,
        concat_ws(
            ' ',
            catalogue.title,
            catalogue.description,
            (select string_agg('#' || tag.value, ' ') from jsonb_array_elements_text(catalogue.tags) as tag)
        ) as content_text,
        null::text as network,
        null::text as account_id,
        catalogue.published_at::date as created_date,
        coalesce(video_views.sessions, 0) as engagement,
        '{}'::text[] as labels
    from {{ ref('video_content') }} as catalogue
    left join video_views on catalogue.content_id = video_views.content_id
),

documents as (
    select * from post_documents
    union all
    select * from tweet_documents
    union all
    select * from video_documents
)

select
    document_key,
    source_type,
    content_text,
    network,
    account_id,
    created_date,
    engagement,
    labels
from documents
where nullif(trim(content_text), '') is not null
