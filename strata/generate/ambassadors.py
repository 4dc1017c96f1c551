"""ambassadors: nested program exports (ambassador -> programs -> tasks); some files malformed."""

from __future__ import annotations

from datetime import timedelta
from random import Random

from strata.generate import people
from strata.generate.cdc import brand_id, brand_name
from strata.generate.core import Run, assign, rng_for, split_scale, write_bytes
from strata.generate.faults import JSON_FILE_FAULTS, render_json_file
from strata.generate.manifest import SourceReport, account_json_file

SOURCE = "ambassadors"
FILES = 10  # at scale 1
PER_FILE = 25  # at scale 1
FILE_GROWTH_CAP = 40  # files grow to 40x before there are more of them
_PLATFORMS = ("instagram", "tiktok", "youtube")


def _ambassador(rng: Random, run: Run, number: int) -> dict:
    name = people.full_name(rng)
    programs = []
    for p in range(rng.randint(1, 3)):
        brand = rng.randrange(50)
        tasks = []
        for t in range(rng.randint(0, 5)):
            platform = rng.choice(_PLATFORMS)
            reach = int(rng.lognormvariate(8, 1.3))
            tasks.append(
                {
                    "task_id": f"tsk_{number:07d}_{p}_{t}",
                    "platform": platform,
                    "post_url": f"https://www.{platform}.example/p/{number:07d}{p}{t}",
                    "likes": int(reach * rng.uniform(0.02, 0.1)),
                    "comments": int(reach * rng.uniform(0.001, 0.01)),
                    "shares": int(reach * rng.uniform(0.0, 0.01)),
                    "reach": reach,
                }
            )
        programs.append(
            {
                "program_id": f"prg_{brand:03d}_{p}",
                "brand_id": brand_id(brand),
                "brand": brand_name(brand),
                # Cents first, so the manifest's sum is exact.
                "total_sales_attributed": rng.randrange(0, 2_500_000) / 100,
                "tasks": tasks,
            }
        )
    slug = people.ascii_slug(name).replace(" ", "")
    return {
        "user_id": f"amb_{number:07d}",
        "name": name,
        "email": people.email(rng, name, number),
        "instagram_handle": f"@{slug}{number}",
        "tiktok_handle": f"@{slug}.{number}" if rng.random() < 0.7 else None,
        "joined_at": (run.start - timedelta(days=rng.randrange(1, 900))).isoformat(),
        "programs": programs,
    }


def generate(run: Run) -> SourceReport:
    report = SourceReport(run)
    part = report.partition("all")
    grow, more = split_scale(run.scale, FILE_GROWTH_CAP)
    files, per_file = FILES * more, PER_FILE * grow
    rates = {kind: getattr(run.rates, kind) for kind in JSON_FILE_FAULTS}
    broken = assign(rng_for(run.seed, SOURCE, "plan"), files, rates)
    programs = tasks = cents = 0
    for f in range(files):
        rng = rng_for(run.seed, SOURCE, "all", f)
        records = [_ambassador(rng, run, f * per_file + i) for i in range(per_file)]
        kind = broken.get(f)
        rel = f"ambassadors/export-{f:04d}.json"
        write_bytes(run.out / rel, render_json_file(rng, kind, records, list, 1))
        if not account_json_file(report, part, rel, kind, len(records)):
            continue
        for record in records:
            programs += len(record["programs"])
            for program in record["programs"]:
                tasks += len(program["tasks"])
                cents += round(program["total_sales_attributed"] * 100)
    report.expect = {
        "ambassadors": part.bronze_rows,
        "programs": programs,
        "tasks": tasks,
        "total_sales_attributed": f"{cents // 100}.{cents % 100:02d}",
    }
    return report
