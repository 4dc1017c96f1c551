{#-
  The partition window of a run, from the vars the Dagster dbt assets pass (dbt_project.yml documents them):
  partition_start <= date < partition_end, and network in partition_networks. Without vars: everything.
  Values are rendered as quoted, typed literals (`date '…'`), never spliced in as SQL.
-#}
{% macro _window_date(name) -%}
    {%- set value = var(name, none) -%}
    {{ return(none if value is none else (value | string | replace("'", "''"))) }}
{%- endmacro %}

{% macro partition_filter(date_column, network_column=none, lookback_days=0) -%}
    {%- set start = _window_date('partition_start') -%}
    {%- set end = _window_date('partition_end') -%}
    {%- set networks = var('partition_networks', none) -%}
    (
        true
        {%- if start is not none %}
            and {{ date_column }} >= date '{{ start }}' - {{ lookback_days | int }}
        {%- endif %}
        {%- if end is not none %}
            and {{ date_column }} < date '{{ end }}'
        {%- endif %}
        {%- if network_column is not none and networks is not none %}
            and {{ network_column }} in (
                {%- for network in networks %}'{{ network | replace("'", "''") }}'{% if not loop.last %}, {% endif %}{% endfor -%}
            )
        {%- endif %}
    )
{%- endmacro %}

{#-
  Pre-hook of the incremental models: clear the run's window before delete+insert, inside the model's
  transaction, so a partition whose rows vanished from bronze is emptied too and a re-run is idempotent.
-#}
{% macro delete_partition_window(date_column, network_column=none) -%}
    {%- if is_incremental() and var('partition_start', none) is not none -%}
        delete from {{ this }} where {{ partition_filter(date_column, network_column) }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
