"""The plan the workflow runs (chaosgrid.plan.workflow), checked without Snakemake: its targets, resources and
files, and what it refuses or says before any job runs."""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chaosgrid.cells import cell_id
from chaosgrid.plan.specs import Shard
from chaosgrid.plan.studies import key_runs
from chaosgrid.plan.workflow import Plan, PlanError, cores_warning, report_problem, retraining_warning

SETTINGS = {"data_root": "data", "downloads": {}, "device": "auto", "job_minutes": 10,
            "execution": {"engine": "auto", "channels_last": False, "compile": False},
            "gpu": {"name": "A100 80GB", "memory_gb": 80, "tflops": 8}}  # fmt: skip


def plan(tmp_path: Path, **studies) -> Plan:
    return Plan.of({**SETTINGS, "studies": studies}, results=tmp_path / "results")


def test_a_plan_names_every_file_the_rules_make_and_the_resources_they_ask(tmp_path):
    made = plan(
        tmp_path,
        base={"lr": [0.1, 0.2], "seeds": 4, "shard_size": 2, "shifts": ["jpeg", "planes"], "severities": [1],
              "resources": {"mem_mb": 1000}},
        more={"init_from": "base", "seeds": 2, "lr": 0.1},
    )  # fmt: skip
    assert len(made.shards) == 4 + 1 and made.weight_studies == [
        "base"
    ]  # the source of init_from keeps weights
    targets = made.targets()
    assert len([t for t in targets if "/weights/" in t]) == 4
    assert len([t for t in targets if t.endswith(".parquet")]) == 3 * 5
    assert "results/base/figures/decision_regions.png" in targets  # the regions analysis: planes among shifts
    assert "results/more/figures/decision_regions.png" not in targets
    assert made.resource("base", "mem_mb", attempt=2) == 2000 and made.resource("base", "threads", 3) == 1
    shard = made.shards["base", "lr~0.1/seeds~0-1"]
    assert list(made.prepared(shard)) == ["data", "jpeg~1", "planes"]
    assert list(made.prepared(shard.training())) == ["data"]  # it keeps weights: shifts in their own job


def test_an_adaptive_study_plans_its_first_block_and_says_how_far_it_may_grow(tmp_path):
    made = plan(tmp_path, seq={"lr": [0.1, 0.2], "until": {"compare": {"axis": "lr"}, "delta": 1, "block": 2,
                                                            "max_seeds": 6}})  # fmt: skip
    assert made.first_block("seq") == ["lr~0.1/seeds~0-1", "lr~0.2/seeds~0-1"]
    assert not [t for t in made.targets() if "/runs/" in t]  # its shards are asked for by its decisions
    said = made.announcements({**SETTINGS}, tmp_path / "results")
    line = ("seq: 4 runs in 2 shards first (2 seeds per grid point), then up to 2 more blocks while its "
            "comparisons are undecided (at most 12 runs)")  # fmt: skip
    assert said == [("info", line)]


def test_planning_warns_of_a_shard_over_its_memory_but_not_on_a_gpu(tmp_path):
    big = {"dataset": "cifar10", "model": "resnet18", "width": 64, "seeds": 8, "resources": {"mem_mb": 500}}
    made = plan(tmp_path, big=big)
    line = made.memory_warning("big", made.study_shards("big"), SETTINGS)
    assert line.startswith("big: shard seeds~0-7 needs about") and "above the study's mem_mb of 500" in line
    assert "set `resources: {mem_mb:" in line
    assert made.memory_warning("big", made.study_shards("big"), {**SETTINGS, "device": "cuda"}) is None


def test_a_study_whose_evaluation_sets_changed_is_told_it_re_trains(tmp_path):
    made = plan(tmp_path, s={"seeds": 2, "shifts": ["jpeg", "contrast"], "severities": [2]})
    shards = made.study_shards("s")
    done = tmp_path / "results/s/predictions/seeds~0-1.parquet"
    done.parent.mkdir(parents=True)
    pq.write_table(pa.table({"shift": ["clean", "jpeg"], "severity": [0, 2]}), done)
    line = retraining_warning("s", shards, tmp_path / "results")
    assert line.startswith("s: its evaluation sets changed (adds contrast~2): its 1 finished shards re-train")
    pq.write_table(pa.table({"shift": ["clean", "jpeg", "contrast"], "severity": [0, 2, 2]}), done)
    assert retraining_warning("s", shards, tmp_path / "results") is None


def test_planning_refuses_what_no_job_could_fix(tmp_path):
    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)  # a folder is there, so nothing downloads it, but it lacks the batches
    made = Plan.of(
        {**SETTINGS, "data_root": str(tmp_path / "data"), "studies": {"c": {"dataset": "cifar10"}}}
    )
    assert made.missing_data().startswith(f"{folder}/data_batch_1 is missing")
    duplicated = tmp_path / "twice.yaml"
    duplicated.write_text("studies:\n  s: {lr: 0.1}\n  s: {lr: 0.2}\n")
    with pytest.raises(PlanError, match="config .*twice.yaml.*'s'"):
        Plan.of({**SETTINGS, "studies": {"s": {}}}, [str(duplicated)])
    with pytest.raises(PlanError, match="config studies: study 's': init_from 'nope'"):
        plan(tmp_path, s={"init_from": "nope"})
    (tmp_path / "results/ran/tables").mkdir(parents=True)
    said = report_problem({"ran": {}, "other": {}}, tmp_path / "results")
    assert (
        said.startswith("--report: study 'other' of this config has no results")
        and "with results: ran" in said
    )
    assert report_problem({"ran": {}}, tmp_path / "results") is None
    assert cores_warning(8, 2).startswith("--cores 8 but this machine has 2") and cores_warning(2, 2) is None


def test_shards_follow_compute_and_a_job_builds_its_own_shard_from_its_key(tmp_path):
    """Where a study sets no shard_size, a cheap grid point's 100 seeds are one shard (about job_minutes of
    work) and an expensive one's 16 are two of 8; a job's own Snakemake (whole=False) builds the shard it runs
    from its key alone, equal to the one the whole plan made, without expanding the other studies."""
    studies = {
        "cheap": {"lr": [0.1, 0.2], "seeds": 100},
        "dear": {"dataset": "synthetic", "model": "resnet18", "width": 16, "epochs": 10, "seeds": 16},
    }
    made = plan(tmp_path, **studies)
    assert [k for s, k in made.shards if s == "cheap"] == ["lr~0.1+0.2/seeds~0-99"]  # lr: one stack
    assert [k for s, k in made.shards if s == "dear"] == ["seeds~0-7", "seeds~8-15"]
    job = Plan.of({**SETTINGS, "studies": studies}, results=tmp_path / "results", whole=False)
    assert job.shards["dear", "seeds~8-15"] == made.shards["dear", "seeds~8-15"]
    assert "dear" not in job.shards._expanded and "cheap" not in job.shards._expanded
    assert job.shards["cheap", "lr~0.1+0.2/seeds~0-99"] == made.shards["cheap", "lr~0.1+0.2/seeds~0-99"]
    assert list(job.shards.study("cheap")) and "dear" not in job.shards._expanded
    for missing in ("lr~0.3/seeds~0-99", "lr~0.1+0.3/seeds~0-99"):  # no such grid point
        with pytest.raises(KeyError):
            job.shards["cheap", missing]


def finish(tmp_path: Path, study: str, keys) -> None:
    for key in keys:
        done = tmp_path / "results" / study / "runs" / f"{key}.parquet"
        done.parent.mkdir(parents=True, exist_ok=True)
        done.touch()


def cell_ids(made: Plan, study: str) -> list[str]:
    return sorted(cell_id(c) for shard in made.study_shards(study) for c in shard.cells())


def test_grid_points_that_differ_in_optimizer_numbers_share_shards_and_keep_every_guarantee(tmp_path):
    """Grid points that differ only in a number the optimizer holds per run (here weight decay, the axis with
    the most values) share a shard where their seeds are fewer than a job's compute holds, trained as one
    stack. The runs are the same as unpacked (stable ids); a deleted result re-runs its shard alone; more
    seeds and a new weight decay train only what is new; a study that keeps weights never packs."""
    grid = {"lr": [0.1, 0.2], "weight_decay": [0, 1e-4, 5e-4], "seeds": 8}
    made = plan(tmp_path, s=grid)
    keys = [k for _, k in made.shards]
    assert keys == [f"lr~{lr}/weight_decay~0+0.0001+0.0005/seeds~0-7" for lr in (0.1, 0.2)]
    shard = made.shards["s", keys[1]]
    assert shard.runs == 24 and [c["weight_decay"] for c in shard.cells()][7:9] == [0, 1e-4]
    assert cell_ids(made, "s") == cell_ids(plan(tmp_path / "apart", s={**grid, "shard_size": 8}), "s")
    assert '"points": [{"weight_decay": 0.0}' in shard.to_json() and key_runs(shard.key) == 24
    assert Shard.from_json(shard.to_json()).cells() == shard.cells()
    assert key_runs("lr~1e+20+0.1/seeds~0-1") == 4 and key_runs("lr~1e+20/seeds~0-1") == 2  # "+" of exponents

    finish(tmp_path, "s", keys[:1])  # the other shard's result deleted: it re-runs as it was
    assert [k for _, k in plan(tmp_path, s=grid).shards] == keys
    finish(tmp_path, "s", keys[1:])
    grown = plan(tmp_path, s={**grid, "weight_decay": [0, 1e-4, 5e-4, 1e-3], "seeds": 12})
    new = [k for _, k in grown.shards if k not in keys]
    assert new == [f"lr~{lr}/weight_decay~{part}" for lr in (0.1, 0.2)
                   for part in ("0+0.0001+0.0005/seeds~8-11", "0.001/seeds~0-11")]  # fmt: skip
    assert sum(grown.shards["s", k].runs for k in new) == 2 * (3 * 4 + 12)  # what is new, nothing twice
    resized = {
        **grid,
        "shard_size": 8,
    }  # packs no more, keeps the finished ones; a job still reads their keys
    assert [k for _, k in plan(tmp_path, s=resized).shards] == keys
    job = Plan.of({**SETTINGS, "studies": {"s": resized}}, results=tmp_path / "results", whole=False)
    assert job.shards["s", keys[0]].runs == 24
    kept = plan(tmp_path, s={**grid, "weights": True})
    assert (
        all("+" not in k for _, k in kept.shards) and len(kept.shards) == 6
    )  # a study whose weights are kept: a point per shard


def test_a_gpu_shard_whose_runs_do_not_fit_together_trains_them_in_stacks(tmp_path):
    """400 fast nets at batch 1,024 need ~780 GB under vmap: planning gives the job the most that fit an 80 GB
    card at once (the plan line says how many), and a shard that fits trains all at once (stack 0)."""
    fast = {"dataset": "cifar10", "model": "fast", "width": 64, "batch_size": 1024, "seeds": 400,
            "shard_size": 400, "resources": {"gpus": 1}}  # fmt: skip
    made = plan(tmp_path, big=fast, small={**fast, "seeds": 8, "shard_size": 8})
    big, small = made.shards["big", "seeds~0-399"], made.shards["small", "seeds~0-7"]
    assert 20 < big.stack < 50 and small.stack == 0
    line = {
        text.split(":")[0]: text for _, text in made.announcements(SETTINGS)
    }  # each study's last: its cost
    assert f"training its 400 runs {big.stack} at a time" in line["big"]
