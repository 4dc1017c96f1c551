{#-
  Engagement rate: interactions / views (or reach), capped at 1, null when the denominator is 0 or null.
  Re-scraped counts can leave a tiny post with more interactions than views; the cap keeps the rate a share
  in [0, 1] (the models flag capped rows where it matters).
-#}
{% macro engagement_rate(interactions, views) -%}
    {#- least() ignores nulls, so the zero-denominator case must be explicit. #}
    (case when ({{ views }}) > 0 then least(({{ interactions }})::double precision / ({{ views }}), 1) end)::double precision
{%- endmacro %}
