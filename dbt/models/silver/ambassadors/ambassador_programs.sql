-- One row per enrolment of an ambassador in a brand program (program ids are shared by many ambassadors).

with ambassadors as (
    select
        ambassadors.user_id,
        bronze.raw
    from {{ ref('ambassadors') }} as ambassadors
    inner join {{ source('bronze', 'ambassadors') }} as bronze
        on
            ambassadors.load_id = bronze.load_id
            and ambassadors.record_number = bronze.record_number
),

programs as (
    select
        ambassadors.user_id,
        program_list.program_json,
        program_list.program_index
    from ambassadors
    cross join lateral jsonb_array_elements({{ json_array('ambassadors.raw', 'programs') }}) with ordinality as program_list (program_json, program_index)
)

select
    user_id,
    {{ json_text('program_json', 'program_id') }} as program_id,
    {{ json_text('program_json', 'brand_id') }} as brand_id,
    {{ json_text('program_json', 'brand') }} as brand_name,
    coalesce(({{ json_text('program_json', 'total_sales_attributed') }})::numeric(14, 2), 0) as sales_attributed,
    jsonb_array_length({{ json_array('program_json', 'tasks') }}) as task_count,
    program_index::integer as program_index
from programs
