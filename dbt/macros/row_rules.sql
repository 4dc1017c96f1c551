{#-
  Row-level rules (Lakeflow's expectations), declared per model in its yml under config.meta.row_rules:

      row_rules:
        - {name: network_is_known, action: drop, expect: "network in ('x', 'tiktok')"}

  A row keeps a rule when `expect` is true for it (null breaks it: say `col is null or …` to allow nulls).
    fail  any row breaking it fails the model: its build is rolled back and the run fails, naming the rule.
    drop  a row breaking it leaves the model and goes to dq_failures.<model> with the rule's name.
    warn  a row breaking it stays, and is recorded in dq_failures.<model> too (action 'warn').
  The post-hook of every model (dbt_project.yml) applies them after the build, inside the model's transaction, so
  no reader ever sees a dropped row. Rules judge the model's own rows, so what is set aside is what the model would
  have published (PII already hashed). dq_failures.<model> holds the latest verdicts of the rows the build covered:
  the run's partition window of an incremental model, everything for a table. Every row carries the build
  (STRATA_DBT_BUILD_ID, from the Dagster asset) that recorded it, whose counts per rule become the
  materialization's metadata (assets/transform/row_rules.py).
-#}
{% macro apply_row_rules() -%}
    {%- set meta = config.get('meta') or {} -%}
    {%- set rules = meta.get('row_rules') or [] -%}
    {%- if execute and rules -%}
        {%- for rule in rules -%}
            {%- if rule.get('action') not in ('warn', 'drop', 'fail') or not rule.get('name') or not rule.get('expect') -%}
                {{ exceptions.raise_compiler_error(
                    model.unique_id ~ ": each of meta.row_rules needs a name, an expect expression and an action"
                    ~ " of warn, drop or fail; got " ~ rule
                ) }}
            {%- endif -%}
        {%- endfor -%}
        {%- set failures = api.Relation.create(database=this.database, schema='dq_failures', identifier=this.identifier) -%}
        {%- set columns = meta.get('partition_columns') or {} -%}
        {%- set windowed = is_incremental() and 'date' in columns and _window_value('partition_start') is not none -%}
        {%- set scope = partition_filter(columns['date'], columns.get('network')) if windowed else 'true' -%}
        {%- set recorded_scope = partition_filter(
            'partition_date', 'partition_network' if 'network' in columns else none
        ) if windowed else 'true' -%}
        {%- set names = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
        {%- set load_id = 'judged.load_id' if 'load_id' in names else 'null::bigint' -%}
        {%- set partition_date = 'judged.' ~ columns['date'] if 'date' in columns else 'null::date' -%}
        {%- set partition_network = 'judged.' ~ columns['network'] if 'network' in columns else 'null::text' -%}
        {%- set build = _literal(env_var('STRATA_DBT_BUILD_ID', '')) -%}
        {%- set model_name = _literal(this.identifier) -%}
        create table if not exists {{ failures }} (
            model text not null,
            rule text not null,
            action text not null,
            load_id bigint,
            partition_date date,
            partition_network text,
            "row" jsonb not null,
            recorded_at timestamptz not null default now(),
            build_id text not null
        );
        delete from {{ failures }} where {{ recorded_scope }};
        {%- for rule in rules if rule['action'] == 'fail' %}
        do $row_rule$
        declare
            broken bigint;
        begin
            select count(*) into broken from {{ this }} where {{ scope }} and not coalesce(({{ rule['expect'] }}), false);
            if broken > 0 then
                raise exception 'row rule % (fail) of %: % rows break it (%)',
                    {{ _literal(rule['name']) }}, {{ model_name }}, broken, {{ _literal(rule['expect']) }};
            end if;
        end
        $row_rule$;
        {%- endfor %}
        {%- for action in ('drop', 'warn') %}
            {%- set chosen = rules | selectattr('action', 'equalto', action) | list -%}
            {%- if chosen %}
        {% if action == 'drop' -%}
        with judged as (
            delete from {{ this }}
            where {{ scope }} and not ({% for rule in chosen %}coalesce(({{ rule['expect'] }}), false){% if not loop.last %} and {% endif %}{% endfor %})
            returning *
        )
        {%- endif %}
        insert into {{ failures }} (model, rule, action, load_id, partition_date, partition_network, "row", build_id)
        select
            {{ model_name }}, broken.rule, '{{ action }}', {{ load_id }}, {{ partition_date }},
            {{ partition_network }}, to_jsonb(judged), {{ build }}
        from {% if action == 'drop' %}judged{% else %}{{ this }} as judged{% endif %}
        cross join lateral (
            values
            {%- for rule in chosen %}
                ({{ _literal(rule['name']) }}, coalesce(({{ rule['expect'] }}), false)){% if not loop.last %},{% endif %}
            {%- endfor %}
        ) as broken (rule, kept)
        where not broken.kept{% if action == 'warn' %} and {{ scope }}{% endif %};
            {%- endif %}
        {%- endfor %}
    {%- endif -%}
{%- endmacro %}

{% macro _literal(text) -%}
    {{- "'" ~ (text | string | replace("'", "''")) ~ "'" -}}
{%- endmacro %}
