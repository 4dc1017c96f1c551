{#- The media type a URL's extension implies: image, video, or null when it says nothing. -#}
{% macro media_type_from_url(url) -%}
    (
        case
            when lower({{ url }}) ~ '\.(jpe?g|png|gif|webp|heic)([?#].*)?$' then 'image'
            when lower({{ url }}) ~ '\.(mp4|mov|webm|m4v)([?#].*)?$' then 'video'
        end
    )
{%- endmacro %}
