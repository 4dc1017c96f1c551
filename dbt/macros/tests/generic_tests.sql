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

{#- Keys of `keys_of`.`field` that the model's `column_name` lacks: the model is the dimension every one of them
    must find (dbt's relationships test seen from the dimension, so it runs when the dimension is built). -#}
{% test holds_every_key_of(model, column_name, keys_of, field) %}
    select distinct keys.{{ field }} as missing_key
    from {{ keys_of }} as keys
    where
        keys.{{ field }} is not null
        and not exists (
            select from {{ model }} as dimension
            where dimension.{{ column_name }} = keys.{{ field }}
        )
{% endtest %}
