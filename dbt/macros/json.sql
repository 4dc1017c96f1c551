{#-
  Key names drift in case and separators (likeCount, like_count, Like_Count, MEDIA_TYPE). These macros look a
  key up in a jsonb object case- and underscore-insensitively: `likecount` matches all of the above. Candidate
  names are tried in the order given; among keys of one object that normalize alike, an exact spelling wins,
  then the smallest key, so the result never depends on key order.
-#}
{% macro normalize_key(name) -%}
    {{ name | lower | replace('_', '') | replace('-', '') }}
{%- endmacro %}

{% macro json_lookup(object, names) -%}
    {%- if names is string %}{% set names = [names] %}{% endif -%}
    (
        select kv.json_value
        from jsonb_each(case when jsonb_typeof({{ object }}) = 'object' then {{ object }} end) as kv (json_key, json_value)
        where
            kv.json_value <> 'null'::jsonb
            and lower(translate(kv.json_key, '_-', '')) in (
                {%- for name in names %}'{{ normalize_key(name) }}'{% if not loop.last %}, {% endif %}{% endfor -%}
            )
        order by
            case lower(translate(kv.json_key, '_-', ''))
                {%- for name in names %} when '{{ normalize_key(name) }}' then {{ loop.index }}{% endfor %}
            end,
            kv.json_key <> '{{ names[0] }}',
            kv.json_key
        limit 1
    )
{%- endmacro %}

{#- The value as text (a JSON string unquoted, anything else in its JSON form), or null. -#}
{% macro json_text(object, names) -%}
    ({{ json_lookup(object, names) }} #>> '{}')
{%- endmacro %}

{#- A jsonb scalar as text (strings unquoted). -#}
{% macro jsonb_text(value) -%}
    ({{ value }} #>> '{}')
{%- endmacro %}

{#-
  The value if it is a JSON array, else an empty one: a record whose list is missing, null or of another type
  unnests to no rows and counts zero items, never an error.
-#}
{% macro json_array(object, names) -%}
    (
        case
            when jsonb_typeof({{ json_lookup(object, names) }}) = 'array' then {{ json_lookup(object, names) }}
            else '[]'::jsonb
        end
    )
{%- endmacro %}

{#-
  The hashtags of a tweet's `entities.hashtags` as text[]: each entry's `field` (`text` in API v1.1, `tag` in
  v2). Anything but an array of objects holds none.
-#}
{% macro hashtag_texts(raw, field) -%}
    array(
        select entry ->> '{{ field }}'
        from
            jsonb_array_elements(
                case
                    when jsonb_typeof({{ raw }} #> '{entities,hashtags}') = 'array'
                        then {{ raw }} #> '{entities,hashtags}'
                    else '[]'::jsonb
                end
            ) as tag (entry)
        where jsonb_typeof(entry) = 'object'
    )
{%- endmacro %}
