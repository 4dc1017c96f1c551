-- Per brand program: enrolled ambassadors, their tasks, reach, interactions and attributed sales.

with task_totals as (
    select
        user_id,
        program_id,
        count(*) as tasks,
        sum(reach) as reach,
        sum(likes) as likes,
        sum(comments) as comments,
        sum(shares) as shares
    from {{ ref('ambassador_tasks') }}
    group by user_id, program_id
),

enrolments as (
    select
        programs.program_id,
        programs.brand_id,
        programs.brand_name,
        programs.user_id,
        programs.sales_attributed,
        coalesce(task_totals.tasks, 0) as tasks,
        coalesce(task_totals.reach, 0) as reach,
        coalesce(task_totals.likes, 0) as likes,
        coalesce(task_totals.comments, 0) as comments,
        coalesce(task_totals.shares, 0) as shares
    from {{ ref('ambassador_programs') }} as programs
    left join task_totals
        on
            programs.user_id = task_totals.user_id
            and programs.program_id = task_totals.program_id
),

programs as (
    select
        program_id,
        brand_id,
        min(brand_name) as brand_name,
        count(distinct user_id) as ambassadors,
        sum(tasks) as tasks,
        sum(reach) as reach,
        sum(likes + comments + shares) as interactions,
        sum(sales_attributed) as sales_attributed
    from enrolments
    group by program_id, brand_id
)

select
    program_id,
    brand_id,
    brand_name,
    ambassadors::bigint as ambassadors,
    tasks::bigint as tasks,
    reach::bigint as reach,
    interactions::bigint as interactions,
    {{ engagement_rate('interactions', 'reach') }} as engagement_rate,
    sales_attributed::numeric(14, 2) as sales_attributed,
    (sales_attributed / nullif(tasks, 0))::numeric(14, 2) as sales_per_task
from programs
