{#-
  The partition window of a run: partition_start <= date < partition_end, and network in partition_networks
  (dbt_project.yml documents them). Unset: everything. Values are rendered as quoted, typed literals
  (`date '…'`), never spliced in as SQL.

  The Dagster dbt assets pass the window in STRATA_DBT_PARTITION_START / _END / _NETWORKS (comma-separated),
  read only at execution time: vars on the command line, or environment read while parsing, make dbt re-parse
  the whole project on every partition run. `--vars` still works for a hand-run `dbt build`.
-#}
{% macro _window_value(name) -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set value = var(name, none) -%}
    {%- if value is none -%}
        {%- set value = env_var('STRATA_DBT_' ~ (name | upper), '') or none -%}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro %}

{% macro _window_date(name) -%}
    {%- set value = _window_value(name) -%}
    {{ return(none if value is none else (value | string | replace("'", "''"))) }}
{%- endmacro %}

{% macro partition_filter(date_column, network_column=none, lookback_days=0) -%}
    {%- set start = _window_date('partition_start') -%}
    {%- set end = _window_date('partition_end') -%}
    {%- set networks = _window_value('partition_networks') -%}
    {%- if networks is string -%}
        {%- set networks = networks.split(',') -%}
    {%- endif -%}
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
  The pre-hook of every model (dbt_project.yml). An incremental model names the columns its partitions are cut
  by in meta.partition_columns: {'date': …} for daily models, {'date': …, 'network': …} for date × network ones.
  The hook clears the run's window of those columns before delete+insert, inside the model's transaction, so a
  partition whose rows vanished from bronze is emptied too and a re-run is idempotent. A table, a first build or
  a full refresh has nothing to clear: the hook renders nothing and dbt skips it.
-#}
{% macro delete_partition_window() -%}
    {%- set meta = config.get('meta') or {} -%}
    {%- set partitioning = (meta.get('dagster') or {}).get('partitioning', 'none') -%}
    {%- set columns = meta.get('partition_columns') or {} -%}
    {#- Without its network column a date × network model would lose the window's days on every network. -#}
    {%- if config.get('materialized') == 'incremental' and partitioning != 'none' and (
        'date' not in columns or ('network' in columns) != (partitioning == 'date_network')
    ) -%}
        {{ exceptions.raise_compiler_error(
            model.unique_id ~ ": meta.partition_columns must be {'date': …} for a daily model and"
            ~ " {'date': …, 'network': …} for a date_network one (this model is " ~ partitioning ~ ")"
        ) }}
    {%- endif -%}
    {%- if is_incremental() and 'date' in columns and _window_value('partition_start') is not none -%}
        delete from {{ this }} where {{ partition_filter(columns['date'], columns.get('network')) }}
    {%- endif -%}
{%- endmacro %}
