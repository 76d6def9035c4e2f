"""The plan the workflow runs (chaosgrid.plan.workflow), checked without Snakemake: its targets, resources and
files, and what it refuses or says before any job runs."""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

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
    assert len(made.shards) == 4 + 1 and made.weight_studies == ["base"]  # the source of init_from keeps weights
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
    made = Plan.of({**SETTINGS, "data_root": str(tmp_path / "data"), "studies": {"c": {"dataset": "cifar10"}}})
    assert made.missing_data().startswith(f"{folder}/data_batch_1 is missing")
    duplicated = tmp_path / "twice.yaml"
    duplicated.write_text("studies:\n  s: {lr: 0.1}\n  s: {lr: 0.2}\n")
    with pytest.raises(PlanError, match="config .*twice.yaml.*'s'"):
        Plan.of({**SETTINGS, "studies": {"s": {}}}, [str(duplicated)])
    with pytest.raises(PlanError, match="config studies: study 's': init_from 'nope'"):
        plan(tmp_path, s={"init_from": "nope"})
    (tmp_path / "results/ran/tables").mkdir(parents=True)
    said = report_problem({"ran": {}, "other": {}}, tmp_path / "results")
    assert said.startswith("--report: study 'other' of this config has no results") and "with results: ran" in said
    assert report_problem({"ran": {}}, tmp_path / "results") is None
    assert cores_warning(8, 2).startswith("--cores 8 but this machine has 2") and cores_warning(2, 2) is None
