{#-
  Key names drift in case and separators (likeCount, like_count, Like_Count, MEDIA_TYPE). These macros look a
  key up in a jsonb object case- and separator-insensitively: `like_count` matches all of the above. Candidate
  names are tried in the order given; for each, the exact spelling wins, then the first of the keys that
  normalize alike in jsonb's own key order (shortest, then bytewise), so the result never depends on the order
  the sender wrote the keys in. A key whose value is JSON null counts as absent.

  No set-returning function runs per row: `->` finds the exact spelling, and only when it is absent does one
  jsonpath filter over the object's keys look for the others. (A correlated `jsonb_each` subquery per lookup
  held ~300 bytes per row in the Postgres backend until the statement ended: 10 GB for a million posts.)
-#}
{% macro normalize_key(name) -%}
    {{ name | lower | replace('_', '') | replace('-', '') }}
{%- endmacro %}

{#- A like_regex matching every spelling of the key: its letters in order, in any case, separators anywhere. -#}
{% macro key_pattern(name) -%}
    {%- set letters = normalize_key(name) -%}
    {%- if not letters.isalnum() -%}
        {{ exceptions.raise_compiler_error("json_lookup: key name " ~ name ~ " must be letters, digits, _ and -") }}
    {%- endif -%}
    ^[_-]*{% for letter in letters %}{{ letter }}[_-]*{% endfor %}$
{%- endmacro %}

{% macro json_lookup(object, names) -%}
    {%- if names is string %}{% set names = [names] %}{% endif -%}
    coalesce(
        {%- for name in names %}
        nullif({{ object }} -> '{{ name }}', 'null'::jsonb),
        jsonb_path_query_first(
            case when jsonb_typeof({{ object }}) = 'object' then {{ object }} end,
            'strict $.keyvalue() ? (@.value != null && @.key like_regex "{{ key_pattern(name) }}" flag "i").value'
        ){% if not loop.last %},{% endif %}
        {%- endfor %}
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
