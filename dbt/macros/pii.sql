{#-
  PII never passes bronze in clear: sha256 of salt || normalized value (trimmed, lower-cased), hex.

  The salt is STRATA_PII_SALT. It reaches Postgres as the session setting `strata.pii_salt`, given when the
  connection opens (libpq's PGOPTIONS, set by the dbt assets: assets/transform/env.py), so no SQL text dbt
  compiles, logs or leaves in target/ ever holds it. A run without the salt fails. The variable is read only
  while executing: dbt keeps the value of every variable read while parsing in its partial-parse state.
  By hand: PGOPTIONS="-c strata.pii_salt=$STRATA_PII_SALT" dbt build.
-#}
{% macro pii_hash(value) -%}
    {%- if execute and env_var('STRATA_PII_SALT', '') == '' -%}
        {{ exceptions.raise_compiler_error("STRATA_PII_SALT is not set: PII cannot be hashed") }}
    {%- endif -%}
    (
        case
            when nullif(trim({{ value }}), '') is not null
                then encode(
                    sha256(convert_to(current_setting('strata.pii_salt') || lower(trim({{ value }})), 'UTF8')),
                    'hex'
                )
        end
    )
{%- endmacro %}
