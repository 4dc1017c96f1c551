{#-
  Engagement counts as scrapers see them: 1234, "1234", "3,400", "1.2K", "1.5M", "2B". Returns a bigint (exact:
  "1.2K" -> 1200), or null when the text is not a count. `value` is a text expression.
-#}
{% macro parse_count(value) -%}
    (
        case
            when {{ value }} ~ '^\s*[0-9][0-9,]*(\.[0-9]+)?\s*[kKmMbB]?\s*$'
                then round(
                    replace(substring({{ value }} from '[0-9][0-9,]*(?:\.[0-9]+)?'), ',', '')::numeric
                    * case upper(substring({{ value }} from '([kKmMbB])\s*$'))
                        when 'K' then 1000
                        when 'M' then 1000000
                        when 'B' then 1000000000
                        else 1
                    end
                )::bigint
        end
    )
{%- endmacro %}

{#- True when the count arrived as text rather than a JSON number (a flag kept next to the parsed value). -#}
{% macro is_count_string(json_value) -%}
    (jsonb_typeof({{ json_value }}) = 'string')
{%- endmacro %}
