-- Labels the vision service returned per post media item, the latest model's only: a media item labelled again
-- by a newer model keeps that model's labels alone, whatever order the files landed in. Versions compare as
-- numbers, part by part (2.10.0 is newer than 2.9.1). A label whose media no post carries is kept and flagged
-- (media_known = false): its post may not be scraped yet, and the flag clears once it is.

with labels as (
    {{
        latest_load_wins(
            source('bronze', 'image_labels'),
            ['network', 'post_id', 'media_index', 'model_version', 'label'],
        )
    }}
),

versioned as (
    select
        network,
        post_id,
        media_index::integer as media_index,
        label,
        model_version,
        array_remove(
            string_to_array(regexp_replace(model_version, '[^0-9.]', '', 'g'), '.'), ''
        )::integer[] as version_parts,
        nullif(trim({{ json_text('raw', 'confidence') }}), '')::double precision as confidence,
        {{ parse_count(json_text('raw', 'bounding_boxes')) }} as bounding_boxes,
        labeled_at,
        partition_date as labeled_date,
        load_id,
        record_number
    from labels
),

ranked as (
    select
        *,
        rank() over (partition by network, post_id, media_index order by version_parts desc) as model_rank
    from versioned
)

select
    ranked.network,
    ranked.post_id,
    ranked.media_index,
    ranked.label,
    ranked.confidence,
    ranked.bounding_boxes,
    ranked.model_version,
    ranked.labeled_at,
    ranked.labeled_date,
    ranked.load_id,
    ranked.record_number,
    media.post_id is not null as media_known
from ranked
left join {{ ref('post_media') }} as media
    on
        ranked.network = media.network
        and ranked.post_id = media.post_id
        and ranked.media_index = media.media_index
where ranked.model_rank = 1
