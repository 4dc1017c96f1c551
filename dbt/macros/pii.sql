{#-
  PII never passes bronze in clear: sha256 of salt || normalized value (trimmed, lower-cased), hex. The salt is
  STRATA_PII_SALT; a run without it fails (parsing alone does not need it, so `dbt parse` works anywhere).
-#}
{% macro pii_salt() -%}
    {%- set salt = env_var('STRATA_PII_SALT', '') -%}
    {%- if execute and salt == '' -%}
        {{ exceptions.raise_compiler_error("STRATA_PII_SALT is not set: PII cannot be hashed") }}
    {%- endif -%}
    {{ return(salt) }}
{%- endmacro %}

{% macro pii_hash(value) -%}
    (
        case
            when nullif(trim({{ value }}), '') is not null
                then encode(
                    sha256(convert_to('{{ pii_salt() | replace("'", "''") }}' || lower(trim({{ value }})), 'UTF8')),
                    'hex'
                )
        end
    )
{%- endmacro %}
