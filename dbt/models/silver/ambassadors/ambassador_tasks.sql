-- One row per task an ambassador did for a program.

with enrolments as (
    select
        ambassadors.user_id,
        program_list.program_json
    from {{ ref('ambassadors') }} as ambassadors
    inner join {{ source('bronze', 'ambassadors') }} as bronze
        on
            ambassadors.load_id = bronze.load_id
            and ambassadors.record_number = bronze.record_number
    cross join lateral jsonb_array_elements({{ json_array('bronze.raw', 'programs') }}) as program_list (program_json)
),

tasks as (
    select
        enrolments.user_id,
        {{ json_text('enrolments.program_json', 'program_id') }} as program_id,
        task_list.task_json
    from enrolments
    cross join lateral jsonb_array_elements({{ json_array('enrolments.program_json', 'tasks') }}) as task_list (task_json)
)

select
    {{ json_text('task_json', 'task_id') }} as task_id,
    user_id,
    program_id,
    lower({{ json_text('task_json', 'platform') }}) as platform,
    {{ json_text('task_json', 'post_url') }} as post_url,
    coalesce({{ parse_count(json_text('task_json', 'likes')) }}, 0) as likes,
    coalesce({{ parse_count(json_text('task_json', 'comments')) }}, 0) as comments,
    coalesce({{ parse_count(json_text('task_json', 'shares')) }}, 0) as shares,
    coalesce({{ parse_count(json_text('task_json', 'reach')) }}, 0) as reach
from tasks
