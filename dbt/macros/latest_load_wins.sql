{#-
  One row per `key` (a column or a list of columns) of `relation`: the latest load wins (highest load_id, then
  record_number), the order bronze received the records in. Where the records carry their own version order (a
  scrape time, an update time, a CDC sequence), `version_column` ranks first, newest first and nulls last, so a
  file that arrives late never overrides a newer version. `where` filters the rows before they are ranked (the
  partition window); `count_versions` adds versions_seen, the number of rows of the key among them.

  `relation` is a source, a ref or a CTE name. Its columns pass through with load_rank (always 1) added, so the
  model selects what it keeps.
-#}
{% macro latest_load_wins(relation, key, version_column=none, where=none, count_versions=false) -%}
    {%- set key_columns = ([key] if key is string else key) | join(', ') -%}
    select *
    from (
        select
            *,
            row_number() over (
                partition by {{ key_columns }}
                order by {% if version_column is not none %}{{ version_column }} desc nulls last, {% endif -%}
                    load_id desc, record_number desc
            ) as load_rank
            {%- if count_versions %},
            count(*) over (partition by {{ key_columns }}) as versions_seen
            {%- endif %}
        from {{ relation }}
        {%- if where is not none %}
        where {{ where }}
        {%- endif %}
    ) as ranked
    where load_rank = 1
{%- endmacro %}
