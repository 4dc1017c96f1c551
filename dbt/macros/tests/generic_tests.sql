{#- Rows where `expression` is not true (null counts as a failure unless the test sets a where). -#}
{% test expression_is_true(model, expression) %}
    select *
    from {{ model }}
    where not coalesce(({{ expression }}), false)
{% endtest %}

{#- Rows of `column_name` outside [min_value, max_value]; nulls pass (not_null tests them). -#}
{% test in_range(model, column_name, min_value=none, max_value=none) %}
    select *
    from {{ model }}
    where
        {{ column_name }} is not null
        and (
            false
            {%- if min_value is not none %} or {{ column_name }} < {{ min_value }}{% endif %}
            {%- if max_value is not none %} or {{ column_name }} > {{ max_value }}{% endif %}
        )
{% endtest %}

{#- Combinations of `columns` that occur more than once. -#}
{% test unique_combination(model, columns) %}
    select {{ columns | join(', ') }}, count(*) as occurrences
    from {{ model }}
    group by {{ columns | join(', ') }}
    having count(*) > 1
{% endtest %}
