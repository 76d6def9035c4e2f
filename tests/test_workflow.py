import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_helpers import REPO, SNAKEMAKE, fail_once, planned_jobs, snakemake, tiny_study, write_config

from chaosgrid.plan.analyses import ANALYSES, STUDY_TABLES
from chaosgrid.plan.specs import SHARD_FILES

CONFIGS = sorted((REPO / "config").glob("*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_dry_run_of_every_config(tmp_path, config):
    start = time.perf_counter()
    done = snakemake(tmp_path, config, "-n")
    print(f"{config.name}: dry-run planned {sum(planned_jobs(done.stdout).values())} jobs "
          f"in {time.perf_counter() - start:.1f} s")  # fmt: skip
    plan = planned_jobs(done.stdout)
    assert plan.get("train_shard", 0) + plan.get("train_shard_keeping_weights", 0) >= 1


def test_planning_never_imports_torch(tmp_path):
    """CI's torch-free dry-runs (.github/workflows/ci.yml) rely on it: a torch that cannot be imported."""
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch/__init__.py").write_text("raise ImportError('planning imported torch')")
    work = tmp_path / "work"
    done = snakemake(work, REPO / "config/calibrated_chaos.yaml", "-n", env={"PYTHONPATH": str(tmp_path)})
    assert planned_jobs(done.stdout)["prepare_eval_set"] >= 1


def test_the_multi_gpu_profile_plans_a_paper_config(tmp_path):
    config = REPO / "config/full_batch.yaml"
    done = snakemake(tmp_path, config, "-n", "--profile", str(REPO / "profiles/gpus"))
    assert planned_jobs(done.stdout)["train_shard"] == 15 * 5


def test_lint_and_format_are_clean():
    lint = subprocess.run([SNAKEMAKE, "--lint"], cwd=REPO, capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    snakefmt = str(Path(SNAKEMAKE).with_name("snakefmt"))
    files = ["Snakefile", *map(str, sorted((REPO / "workflow/rules").glob("*.smk")))]
    fmt = subprocess.run([snakefmt, "--check", *files], cwd=REPO, capture_output=True, text=True, check=False)
    assert fmt.returncode == 0, fmt.stderr


def test_python_lint_is_clean():
    ruff = str(Path(SNAKEMAKE).with_name("ruff"))
    done = subprocess.run([ruff, "check", "src", "tests", "benchmarks", "scripts", "examples"], cwd=REPO,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout


def test_schema_and_readme_tables_are_generated_from_the_parameter_table():
    """What derives from chaosgrid.cells.PARAMETERS is up to date (`chaosgrid schema --write` regenerates it),
    and the schema holds every parameter a study sets, with its choices."""
    import yaml

    from chaosgrid.cells import CHOICES, NOT_IN_STUDIES, PARAMETERS
    from chaosgrid.plan.schema import render_readme, render_schema

    schema_text = (REPO / "workflow/schemas/config.schema.yaml").read_text()
    readme = (REPO / "config/README.md").read_text()
    assert render_schema(schema_text) == schema_text, "run `chaosgrid schema --write`"
    assert render_readme(readme) == readme, "run `chaosgrid schema --write`"
    study = yaml.safe_load(schema_text)["$defs"]["study"]["properties"]
    assert set(PARAMETERS) - set(NOT_IN_STUDIES) <= set(study) and "variants" in study
    for name, choices in CHOICES.items():
        one = study[name]["oneOf"][0]
        assert (one["anyOf"][0] if "anyOf" in one else one)["enum"] == list(choices)
    assert all(f"| `{name}` |" in readme for name in PARAMETERS)


def test_a_drifted_schema_is_named_by_the_check(tmp_path):
    (tmp_path / "workflow/schemas").mkdir(parents=True)
    (tmp_path / "config").mkdir()
    schema = (REPO / "workflow/schemas/config.schema.yaml").read_text()
    (tmp_path / "workflow/schemas/config.schema.yaml").write_text(schema.replace("peak learning rate", "lr"))
    (tmp_path / "config/README.md").write_text((REPO / "config/README.md").read_text())
    chaosgrid = str(Path(SNAKEMAKE).with_name("chaosgrid"))
    done = subprocess.run(
        [chaosgrid, "schema", "--repo", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1 and "config.schema.yaml" in done.stderr and "README" not in done.stderr
    subprocess.run([chaosgrid, "schema", "--repo", str(tmp_path), "--write"], check=True, capture_output=True)
    assert (tmp_path / "workflow/schemas/config.schema.yaml").read_text() == schema


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    """The tiny grid, run once end to end."""
    work = tmp_path_factory.mktemp("grid")
    config = write_config(work, tiny=tiny_study())
    snakemake(work, config)
    return work, config


def test_end_to_end_tables_and_figures(grid_run):
    work, _ = grid_run
    tables = work / "results/tiny/tables"
    runs, evals, summary = (pd.read_parquet(tables / f"{t}.parquet") for t in ("runs", "evals", "summary"))
    assert len(runs) == 8 and runs["cell_id"].is_unique
    assert len(evals) == 8 * 2 and set(evals["shift"]) == {"clean", "jpeg"}
    assert len(summary) == 2 * 2 and (summary["n_runs"] == 4).all()
    assert sorted(summary["lr"].unique()) == [0.05, 0.1]
    variance = pd.read_parquet(tables / "variance.parquet")
    assert len(variance) == 2 * 2 and (variance["n_runs"] == 4).all()
    clean = summary[summary["shift"] == "clean"].merge(variance, on=["lr", "shift", "severity"])
    assert (clean["std_acc_x"] - clean["std_acc_y"]).abs().max() < 1e-12  # two tables, one statistic
    churn = pd.read_parquet(tables / "churn.parquet")
    assert list(churn["n_pairs"]) == [2, 2] and churn["mean_churn"].between(0, 1).all()
    assert len(pd.read_parquet(tables / "better_seeds.parquet")) == 2
    history = pd.read_parquet(tables / "history.parquet")
    assert len(history) == 8 and set(history["lr"]) == {0.05, 0.1} and history["current_lr"].lt(0.1).all()
    names = ["accuracy_distribution", "mean_std_by_axis", "shifts", "training_curves", "variance_by_axis",
             "independence", "churn", "variance_vs_shift", "comparisons"]  # fmt: skip
    comparisons = pd.read_parquet(tables / "comparisons.parquet")
    assert list(comparisons[["shift", "axis", "a", "b"]].itertuples(index=False, name=None)) == [
        ("clean", "lr", "0.1", "0.05"),
        ("jpeg", "lr", "0.1", "0.05"),
    ]  # one comparison per evaluation set
    assert (
        comparisons["test_set_lo"].lt(comparisons["diff"]).all()
        and comparisons["runs_test_set_1pt"].ge(2).all()
    )
    assert (comparisons["comparisons"] == 1).all() and comparisons["test_set_verdict_holm"].notna().all()
    for name in names:
        assert (work / f"results/tiny/figures/{name}.png").stat().st_size > 10_000
    assert list((work / "results/tiny/logs").rglob("*.log")) and list(
        (work / "results/tiny/benchmarks").rglob("*.tsv")
    )


def test_compare_prints_both_questions_and_names_bad_input(grid_run):
    work, _ = grid_run
    chaosgrid = str(Path(SNAKEMAKE).with_name("chaosgrid"))
    run = lambda *args: subprocess.run([chaosgrid, "compare", "--study", "tiny", "--results", str(work / "results"),
                                        *args], check=False, capture_output=True, text=True, timeout=120)  # fmt: skip
    by_axis = run("--axis", "lr")
    assert by_axis.returncode == 0, by_axis.stderr
    assert "lr: A=0.1 vs B=0.05" in by_axis.stdout and "on the distribution" in by_axis.stdout
    by_points = run("--a", "lr=0.1", "--b", "lr=0.05")
    assert by_points.returncode == 0 and by_points.stdout == by_axis.stdout  # the same comparison both ways
    assert run("--a", "lr=1e-1", "--b", "lr=5e-2").stdout == by_points.stdout  # values match as numbers
    shifted = run("--axis", "lr", "--eval", "jpeg~1")
    assert shifted.returncode == 0 and "accuracy on the jpeg~1 test set" in shifted.stdout
    as_json = json.loads(run("--axis", "lr", "--format", "json").stdout)
    assert [(r["eval"], r["a"], r["b"]) for r in as_json] == [("clean", "0.1", "0.05")]
    as_csv = run("--axis", "lr", "--eval", "jpeg~1", "--format", "csv").stdout.splitlines()
    assert len(as_csv) == 2 and as_csv[0].startswith("eval,axis,a,b,at")
    bad_input = {("--axis", "width"): "'width' is not an axis", ("--a", "lr=0.3", "--b", "lr=0.1"): "values: 0.05, 0.1",
                 ("--axis", "lr", "--eval", "snow~1"): "its sets: clean, jpeg~1"}  # fmt: skip
    for args, named in bad_input.items():
        bad = run(*args)
        assert bad.returncode == 2 and named in bad.stderr, bad.stderr
    unknown = subprocess.run([chaosgrid, "compare", "--study", "tiny_", "--results", str(work / "results"), "--axis",
                              "lr"], check=False, capture_output=True, text=True)  # fmt: skip
    assert unknown.returncode == 2 and "studies with tables: tiny" in unknown.stderr


def test_export_writes_every_table_as_csv_or_json(grid_run, tmp_path):
    work, _ = grid_run
    chaosgrid = str(Path(SNAKEMAKE).with_name("chaosgrid"))
    export = lambda *args: subprocess.run([chaosgrid, "export", "--study", "tiny", "--results", str(work / "results"),
                                           "--out", str(tmp_path), *args], capture_output=True, text=True, check=False)  # fmt: skip
    assert export().returncode == 0
    tables = sorted((work / "results/tiny/tables").glob("*.parquet"))
    for table in tables:
        csv, parquet = pd.read_csv(tmp_path / f"{table.stem}.csv"), pd.read_parquet(table)
        assert list(csv.columns) == list(parquet.columns) and len(csv) == len(parquet), table.stem
    assert export("--table", "summary", "--format", "json").returncode == 0
    summary = pd.read_parquet(work / "results/tiny/tables/summary.parquet")
    assert [r["mean_acc"] for r in json.loads((tmp_path / "summary.json").read_text())] == pytest.approx(
        list(summary["mean_acc"])
    )
    bad = export("--table", "nope")
    assert bad.returncode == 2 and "its tables: " in bad.stderr


def test_report_builds(grid_run):
    work, config = grid_run
    snakemake(work, config, "--report", str(work / "report.html"))
    html = (work / "report.html").read_text(errors="replace")
    assert all(name in html for name in ("accuracy_distribution", "mean_std_by_axis", "shifts.png", "comparisons.png",
                                         "summary.html", "variance.html", "comparisons.html", "overview.html"))  # fmt: skip
    assert "full-batch vs SGD table" in html and "dataset digits, model cnn" in html  # the front page
    overview = (work / "results/tiny/report/overview.html").read_text()
    assert all(
        f"<td>{item}</td>" in overview for item in ("runs", "8", "4 (2 runs each)", "axis lr", "0.05, 0.1")
    )
    page = (work / "results/tiny/report/variance.html").read_text()
    assert page.count("<tr") == 1 + 4 and "var_binomial_lo" in page  # header + 2 lr x 2 evaluation sets
    assert "results.html" in html
    results = (work / "results/tiny/report/results.html").read_text()
    assert (
        "Does clean test accuracy change along lr" in results
        and "8 runs at 2 grid points; 0 diverged." in results
    )
    assert (
        "lr 0.1 vs 0.05: A - B " in results
        and "(Holm, over 1 comparison: every one of this evaluation set" in results
    )
    assert results.count("<img") == len(ANALYSES["variance"].figures) + len(ANALYSES["compare"].figures) + 4
    assert (
        "Distribution of clean test accuracy over all runs of study <b>tiny</b>" in results
    )  # captions inline
    comparisons = (work / "results/tiny/report/comparisons.html").read_text()
    assert (
        "Holm verdict" in comparisons
        and "runs per arm for 0.5 points" in comparisons
        and "se_runs" not in comparisons
    )


def test_a_report_of_a_config_that_was_not_run_says_so_in_one_line(grid_run):
    work, _ = grid_run
    other = write_config(work, "other.yaml", never_run=tiny_study())
    done = snakemake(work, other, "--report", str(work / "other.html"), check=False)
    said = done.stdout + done.stderr
    assert done.returncode != 0 and len(said.splitlines()) < 8, said
    assert "study 'never_run' of this config has no results" in said and "studies with results: tiny" in said


def test_rerun_has_nothing_to_do(grid_run):
    work, config = grid_run
    assert "Nothing to be done" in snakemake(work, config, "-n").stdout


def test_deleting_one_shard_reruns_exactly_it(grid_run):
    work, config = grid_run
    deleted, *kept = sorted((work / "results/tiny/runs").rglob("*.parquet"))
    before = [k.stat().st_mtime_ns for k in kept]
    deleted.unlink()
    plan = planned_jobs(snakemake(work, config, "-n").stdout)
    downstream = {"aggregate": 1, "study_figures": 1, "variance": 1, "variance_figures": 1, "compare": 1,
                  "compare_figures": 1, "report_tables": 1, "all": 1}  # fmt: skip
    assert plan == {"train_shard": 1, **downstream}
    snakemake(work, config)
    assert deleted.exists() and [k.stat().st_mtime_ns for k in kept] == before


def test_adding_an_lr_value_runs_only_the_new_shard(grid_run):
    work, _ = grid_run
    config = write_config(work, "more.yaml", tiny=tiny_study(lr=[0.05, 0.1, 0.2]))
    plan = planned_jobs(snakemake(work, config, "-n").stdout)
    assert plan["train_shard"] == 2  # the new lr's two seed blocks, nothing else
    wide = snakemake(work, write_config(work, "wide.yaml", tiny=tiny_study(width=[4, 1500])), "-n")
    said = wide.stdout + wide.stderr  # planning estimates a shard's memory (chaosgrid.footprint)
    assert re.search(
        r"tiny: shard width~1500/lr~0.05/seeds~[0-9-]+ needs about [\d,]+ MB \(.*202,594,510 parameters "
        r"per run, 1 run\(s\) in memory at once\), above the study's mem_mb of 2,000",
        said,
    ), said
    assert said.count(" needs about ") == 1
    snakemake(work, config)
    assert len(pd.read_parquet(work / "results/tiny/tables/runs.parquet")) == 12
    assert (work / "results/tiny/runs/lr~0.2/seeds~0-1.parquet").exists()


def test_a_study_grown_from_12_to_16_to_32_seeds_trains_only_the_new_blocks(tmp_path):
    grown = lambda seeds: write_config(
        tmp_path, f"s{seeds}.yaml", grow=tiny_study(lr=0.05, seeds=seeds, shard_size=8)
    )
    shard_jobs = lambda out: sorted(re.findall(r"rule train_shard:\n(?:    .*\n)*?    output: results/grow/runs/"
                                               r"(seeds~[\d,-]+)\.parquet", out))  # fmt: skip
    snakemake(tmp_path, grown(12))
    dry = snakemake(tmp_path, grown(16), "-n", "--quiet", "host").stdout
    after = {"aggregate": 1, "study_figures": 1, "variance": 1, "variance_figures": 1, "compare": 1, "compare_figures": 1,
             "report_tables": 1, "all": 1}  # fmt: skip
    assert planned_jobs(dry) == {"train_shard": 1, **after} and shard_jobs(dry) == ["seeds~12-15"]
    snakemake(tmp_path, grown(16), "--until", "aggregate")  # the tables after it are planned again below
    dry = snakemake(tmp_path, grown(32), "-n", "--quiet", "host").stdout
    assert planned_jobs(dry) == {"train_shard": 2, **after}
    assert shard_jobs(dry) == ["seeds~16-23", "seeds~24-31"]
    runs = pd.read_parquet(tmp_path / "results/grow/tables/runs.parquet")
    assert sorted(runs["init_seed"]) == list(range(16))


def test_shards_sized_by_compute_grow_and_resize_without_training_anything_twice(tmp_path):
    """Without shard_size a grid point's tiny runs share one shard, sized by compute: 12 seeds are seeds~0-11;
    grown to 40, only seeds~12-39 train; with a job_minutes that makes blocks of 8, nothing finished re-runs."""

    def config(seeds, **settings):
        study = {k: v for k, v in tiny_study(lr=0.05, seeds=seeds).items() if k != "shard_size"}
        path = tmp_path / f"s{seeds}{'-'.join(settings)}.yaml"
        path.write_text(yaml.safe_dump({**settings, "studies": {"auto": study}}))
        return path

    snakemake(tmp_path, config(12))
    assert [p.name for p in (tmp_path / "results/auto/runs").rglob("*.parquet")] == ["seeds~0-11.parquet"]
    dry = snakemake(tmp_path, config(40), "-n", "--quiet", "host").stdout
    assert planned_jobs(dry)["train_shard"] == 1 and "results/auto/runs/seeds~12-39.parquet" in dry
    snakemake(tmp_path, config(40))
    again = snakemake(tmp_path, config(40, job_minutes=0.001), "-n")
    assert "Nothing to be done" in again.stdout + again.stderr


def test_a_study_adds_seed_blocks_only_while_its_comparisons_are_undecided(tmp_path):
    """lr 0.05 vs 0.001 differs by far more than delta (decided at the second look), lr 0.1 vs 0.05 by little
    (open until the budget or futility): the second block trains for all three points, later blocks only
    for the two points of the open comparison, and the decisions table says how each stopped."""
    until = {"compare": {"axis": "lr"}, "delta": 0.5, "block": 4, "max_seeds": 12}
    study = {k: v for k, v in tiny_study(lr=[0.001, 0.05, 0.1], until=until).items()
             if k not in ("seeds", "shard_size", "shifts", "severities")}  # the block sets the seeds  # fmt: skip
    config = write_config(tmp_path, seq=study)
    dry = snakemake(tmp_path, config, "-n")
    assert (
        "seq: 12 runs in 3 shards first (4 seeds per grid point), then up to 2 more blocks"
        in dry.stdout + dry.stderr
    )
    snakemake(tmp_path, config, "--until", "sequential_figures")  # the study's other figures are other tests'

    decisions = pd.read_parquet(tmp_path / "results/seq/tables/decisions.parquet")
    assert list(decisions["comparison"]) == ["lr=0.05 vs 0.001", "lr=0.1 vs 0.05"]
    first, second = decisions.to_dict("records")
    assert first["status"] == "success" and first["verdict"] == "A > B" and first["seeds"] < 12
    trained = sorted(
        str(p.relative_to(tmp_path / "results/seq/runs"))
        for p in (tmp_path / "results/seq/runs").rglob("*.parquet")
    )
    blocks = {lr: sum(k.startswith(f"lr~{lr}/") for k in trained) for lr in ("0.001", "0.05", "0.1")}
    assert blocks["0.001"] == first["look"] and blocks["0.05"] == blocks["0.1"] == second["look"]
    runs = pd.read_parquet(tmp_path / "results/seq/tables/runs.parquet")
    assert len(runs) == 4 * sum(blocks.values())
    assert (tmp_path / "results/seq/figures/sequential.png").stat().st_size > 10_000
    assert "Nothing to be done" in snakemake(tmp_path, config, "-n", "--until", "sequential_figures").stdout


@pytest.mark.parametrize(
    "study, named",
    [
        ({"lr": -1}, "lr"),
        ({"learning_rate": 0.1}, "learning_rate"),
        ({"width": "wide"}, "width"),
        ({"augmentation": ["none", "mixup"]}, "mixup"),
        ({"shifts": ["snow"], "severities": [1]}, "snow"),
        ({"optimizer": "lion"}, "lion"),
        ({"grad_clip": -0.5}, "grad_clip"),
        ({"optimizer": "sam", "sam_rho": -1}, "sam_rho"),
        ({"batch_size": 32, "micro_batch": 64}, "micro_batch"),
        ({"lr": [0.1, 0.1]}, "lr"),
    ],
)
def test_bad_config_fails_before_any_job(tmp_path, study, named):
    config = write_config(tmp_path, bad=study)
    done = snakemake(tmp_path, config, check=False)
    assert done.returncode != 0
    assert named in done.stdout + done.stderr
    assert len((done.stdout + done.stderr).splitlines()) < 12  # the line that matters, not the schema
    assert not (tmp_path / "results").exists()


def test_failed_job_is_retried_and_nothing_is_lost(tmp_path):
    config = write_config(
        tmp_path, tiny=tiny_study(lr=0.05, seeds=2, resources={"runtime": 7, "mem_mb": 900})
    )
    marker = tmp_path / "failed-once"
    done = snakemake(tmp_path, config, "--quiet", "host", env=fail_once(marker))  # job blocks
    assert marker.exists()  # the first attempt failed ...
    assert len(pd.read_parquet(tmp_path / "results/tiny/tables/runs.parquet")) == 2  # ... the retry completed
    log = (
        done.stdout + done.stderr
    )  # ... with twice the time and memory (a limit that killed it is not hit again)
    assert "runtime=7," in log and "runtime=14," in log and "mem_mb=900," in log and "mem_mb=1800," in log


def test_killed_training_job_leaves_no_result_and_is_redone(tmp_path):
    config = write_config(tmp_path, slow=tiny_study(lr=0.05, seeds=2, epochs=60, shifts=[], severities=[]))
    cmd = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(config), "--cores", "1"]  # fmt: skip
    env = {**os.environ, "PATH": f"{Path(SNAKEMAKE).parent}:{os.environ['PATH']}"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True
    )
    log = tmp_path / "results/slow/logs/seeds~0-1.log"
    deadline = time.time() + 120
    while not (log.exists() and "runs," in log.read_text()) and time.time() < deadline:
        time.sleep(0.2)
    assert log.exists(), "training never started"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not list((tmp_path / "results/slow").rglob("*.parquet"))
    snakemake(tmp_path, config, "--unlock")
    assert planned_jobs(snakemake(tmp_path, config, "-n").stdout)["train_shard"] == 1
    snakemake(tmp_path, config)
    tables = len(STUDY_TABLES) + len(ANALYSES["variance"].tables) + len(ANALYSES["compare"].tables)
    assert len(list((tmp_path / "results/slow").rglob("*.parquet"))) == len(SHARD_FILES) + tables


def test_a_shard_stopped_by_sigterm_is_retried_from_its_saved_state_and_says_so_on_the_console(tmp_path):
    """As at a SLURM time limit: the shard job gets SIGTERM after a save, saves, exits; Snakemake's retry
    resumes from the state (its log says so; that the tables are then bit-identical to an uninterrupted
    run's is test_resume.py's), and the state is gone once the shard is done. With the default profile's
    quiet settings (no `--quiet host`, as a user runs it), the stopped job's own words reach the console, not
    only "non-zero exit status", and so does a line for the finished shard with its progress."""
    config = write_config(tmp_path, slow=tiny_study(lr=0.05, seeds=2, epochs=4, shifts=[], severities=[]))
    marker = tmp_path / "stopped-once"
    done = snakemake(tmp_path, config, "--config", "save_every=0.002",
                     env=fail_once(marker, "CHAOSGRID_STOP_AFTER_SAVE"))  # fmt: skip
    assert marker.exists()
    console = done.stdout + done.stderr
    assert (
        "last lines of results/slow/logs/seeds~0-1.log" in console
        and "| stopped on request: state saved" in console
    )
    assert "shard done: slow seeds~0-1: 2 runs in" in console and "1 of 1 shard jobs (2 runs) done" in console
    log = (tmp_path / "results/slow/logs/seeds~0-1.log").read_text()
    assert "resuming from results/slow/resume/seeds~0-1.pt" in log, log
    assert not list((tmp_path / "results/slow/resume").rglob("*.pt"))
    assert len(pd.read_parquet(tmp_path / "results/slow/tables/runs.parquet")) == 2


def test_execution_block_reaches_every_shard_job_and_is_validated(tmp_path):
    config = tmp_path / "config.yaml"
    study = {"tiny": tiny_study(lr=0.05, seeds=2)}
    config.write_text(
        yaml.safe_dump({"execution": {"engine": "vmap", "channels_last": True}, "studies": study})
    )
    shell = snakemake(tmp_path, config, "-n", "-p", "--quiet", "host").stdout  # shell commands shown
    assert "--engine vmap --channels-last --no-compile" in shell
    config.write_text(yaml.safe_dump({"execution": {"engine": "jit"}, "studies": study}))
    done = snakemake(tmp_path, config, "-n", check=False)
    assert done.returncode != 0 and "jit" in done.stdout + done.stderr


def test_runs_start_from_another_studys_weights_and_depend_on_them(tmp_path):
    """`init_from` makes the source study keep weights and each continuing shard take its source's file
    as input: deleting one weights file re-runs that shard and the one that starts from it, nothing else.
    Snapshot checkpoints add predictions at the schedule's cycle ends; tables read the final ones. A study
    that keeps weights is evaluated on its shifts from them: a shift added to it re-trains nothing, while one
    added to a study without weights re-trains its shards, which planning says."""
    base = tiny_study(lr=[0.05, 0.1], schedule="cyclic_cosine", cycles=2, warmup=0, checkpoints="snapshots")
    more = tiny_study(
        lr=[0.05, 0.1], epochs=0.05, schedule="constant", warmup=0, init_from="base"
    )  # one step
    config = write_config(tmp_path, base=base, more=more)
    plan = planned_jobs(snakemake(tmp_path, config, "-n").stdout)
    assert plan["train_shard_keeping_weights"] == 4 and plan["train_shard"] == 4
    snakemake(tmp_path, config)
    weights = sorted((tmp_path / "results/base/weights").rglob("*.pt"))
    assert len(weights) == 4 and not (tmp_path / "results/more/weights").exists()
    predictions = pd.read_parquet(tmp_path / "results/base/predictions/lr~0.05/seeds~0-1.parquet")
    for shift in ("clean", "jpeg"):  # at both snapshots: the shift's from the kept weights
        rows = predictions[predictions["shift"] == shift]
        assert rows.groupby("cell_id")["step"].nunique().eq(2).all() and rows["final"].sum() == 2
    assert len(pd.read_parquet(tmp_path / "results/base/tables/evals.parquet")) == 8 * 2  # final only
    history = pd.read_parquet(tmp_path / "results/base/history/lr~0.05/seeds~0-1.parquet")
    assert len(history) == 2 and (history["epoch"] == 1).all()
    keys = ["lr", "init_seed"]
    base_runs, more_runs = (pd.read_parquet(tmp_path / f"results/{s}/tables/runs.parquet").sort_values(keys)
                            for s in ("base", "more"))  # fmt: skip
    assert (more_runs["steps"] == 1).all() and more_runs[
        "test_acc"
    ].mean() > 0.4  # one step from scratch: ~0.1
    assert (more_runs["test_acc"].to_numpy() - base_runs["test_acc"].to_numpy()).std() < 0.1
    config = write_config(tmp_path, base={**base, "shifts": ["jpeg", "contrast"]},
                          more={**more, "shifts": ["jpeg", "contrast"]})  # fmt: skip
    dry = snakemake(tmp_path, config, "-n").stdout
    plan = planned_jobs(dry)
    assert (
        plan["evaluate_shard"] == 4 and plan["train_shard"] == 4 and "train_shard_keeping_weights" not in plan
    )
    assert "more: its evaluation sets changed (adds contrast~1): its 4 finished shards re-train" in dry
    assert "base: its evaluation sets" not in dry
    snakemake(tmp_path, config, "--until", "evaluate_shard")
    predictions = pd.read_parquet(tmp_path / "results/base/predictions/lr~0.05/seeds~0-1.parquet")
    assert predictions.groupby("shift")["cell_id"].count().to_dict() == {"clean": 4, "contrast": 4, "jpeg": 4}
    (tmp_path / "results/base/weights/lr~0.1/seeds~2-3.pt").unlink()
    plan = planned_jobs(snakemake(tmp_path, config, "-n").stdout)
    assert (
        plan["train_shard_keeping_weights"] == 1 and plan["evaluate_shard"] == 1 and plan["train_shard"] == 4
    )


def test_full_batch_study_makes_its_table_and_figures(tmp_path):
    """A miniature of study 2 on MNIST-1D signals: SGD vs full batch with clip, penalty and noise, each row's
    description, statistics and curves, from the real workflow."""
    study = {"dataset": "mnist1d", "model": "conv1d", "width": 4, "data_fraction": 0.1, "augmentation": "crop",
             "schedule": "cosine", "seeds": 2, "checkpoints": "evenly:3",
             "variants": {"sgd": {"batch_size": 50, "epochs": 2},
                          "fb_reg": {"batch_size": 2000, "micro_batch": 50, "batch_order": "fixed", "epochs": 6,
                                     "grad_clip": 0.25, "grad_penalty": 0.5, "noise_additive": 0.01}}}  # fmt: skip
    config = write_config(tmp_path, fb=study)
    snakemake(tmp_path, config)
    table = pd.read_parquet(tmp_path / "results/fb/tables/full_batch.parquet")
    assert list(table["variant"]) == ["sgd", "fb_reg"]  # declared order, not alphabetical
    sgd, fb = table.iloc[0], table.iloc[1]
    assert sgd["batching"] == "SGD, batch 50, shuffled each epoch" and sgd["steps"] == 2 * 5  # 200 signals
    assert fb["batching"] == "full batch, chunks of 50, fixed chunks" and fb["steps"] == 6
    assert fb["modifications"] == "grad_penalty=0.5, grad_clip=0.25, noise_additive=0.01"
    assert sgd["modifications"] == "-" and fb["data"] == sgd["data"] == "live crop"
    assert (table["n_runs"] == 2).all() and table["std_binomial"].gt(0).all() and 0 < fb["clipped"] <= 1
    runs = pd.read_parquet(tmp_path / "results/fb/tables/runs.parquet")
    mean = runs.groupby("variant")["test_acc"].mean()
    assert abs(mean["sgd"] - sgd["mean_acc"]) < 1e-12 and abs(mean["fb_reg"] - fb["mean_acc"]) < 1e-12
    curves = pd.read_parquet(tmp_path / "results/fb/tables/full_batch_curves.parquet")
    assert list(curves.loc[curves["variant"] == "fb_reg", "step"]) == [2, 4, 6]
    for name in ("full_batch_table", "full_batch_accuracy", "full_batch_curves", "full_batch_clipped"):
        assert (tmp_path / f"results/fb/figures/{name}.png").stat().st_size > 10_000


def test_a_named_configfile_runs_only_its_own_studies(tmp_path):
    """`--configfile X` plans X's studies only, not the default grid's too (Snakemake merges them)."""
    (tmp_path / "config").mkdir()
    write_config(tmp_path / "config", default=tiny_study())
    named = write_config(tmp_path, "named.yaml", other=tiny_study(lr=0.05))
    plan = planned_jobs(snakemake(tmp_path, named, "-n").stdout)
    assert plan["train_shard"] == 2  # other's two seed blocks; the default's four are not planned
    cmd = [
        SNAKEMAKE,
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(tmp_path),
        "-n",
        "--cores",
        "1",
    ]
    default = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300)
    assert planned_jobs(default.stdout)["train_shard"] == 4


def test_ensembles_study_end_to_end_and_curves_depend_on_their_endpoints(tmp_path):
    """Study 3 in small: Ind, SSE, FGE (from Ind's epoch-1 checkpoint) and SingleCycle at equal budget, curves
    between pairs of Ind runs; deleting one endpoint's weights re-runs that shard, the FGE shard starting from
    it and its curve, and no other training."""
    common = {"model": "cnn", "width": 4, "seeds": 4, "shard_size": 2, "probabilities": True}
    studies = {
        "ind": {**common, "epochs": 2, "schedule": "garipov", "warmup": 0, "checkpoints": "evenly:2",
                "curves": {"pairs": 2, "points": 5, "epochs": 0.5},
                "ensembles": {"sse": "sse", "fge": "fge", "single_cycle": "cycle", "sse_last": 1}},
        "sse": {**common, "epochs": 2, "schedule": "cyclic_cosine", "cycles": 2, "warmup": 0,
                "checkpoints": "snapshots"},
        "fge": {**common, "init_from": "ind", "init_epoch": 1, "epochs": 1, "schedule": "fge", "cycles": 2,
                "lr_min": 0.005, "warmup": 0, "checkpoints": "snapshots"},
        "cycle": {**common, "epochs": 1, "schedule": "cosine", "warmup": 0, "seeds": 8, "shard_size": 4},
    }  # fmt: skip
    config = write_config(tmp_path, **studies)
    snakemake(tmp_path, config)
    tables = tmp_path / "results/ind/tables"
    table = pd.read_parquet(tables / "ensembles.parquet").set_index(["method", "budget"])
    assert set(table.index.get_level_values("method")) == {
        "single",
        "ind",
        "nocycle",
        "sse",
        "fge",
        "single_cycle",
    }
    members = {m: table.loc[(m, 1), "members"] for m in ("ind", "nocycle", "sse", "fge", "single_cycle")}
    assert members == {
        "ind": 1,
        "nocycle": 2,
        "sse": 1,
        "fge": 2,
        "single_cycle": 2,
    }  # SSE: the last snapshot
    assert (
        table.xs(1, level="budget")["epochs"] == 2
    ).all()  # equal budgets: FGE's 1 + 1 epochs, 2 cycles of 1
    assert table.loc[("ind", 2), "repetitions"] == 2 and table.loc[("single", 1), "repetitions"] == 4
    runs = pd.read_parquet(tables / "runs.parquet")
    assert table.loc[("single", 1), "error"] == pytest.approx(
        1 - runs["test_acc"].mean(), abs=0.002
    )  # float16 probs
    pairs = pd.read_parquet(tables / "diversity.parquet").set_index("method")["pairs"].to_dict()
    assert pairs == {"ind": 6, "nocycle": 4, "fge": 4, "single_cycle": 4}  # one SSE member per run: no pairs
    curves = pd.read_parquet(tables / "curves.parquet")
    assert len(curves) == 2 * 3 * 5 and set(curves["pair"]) == {"pair~0-1", "pair~2-3"}
    ends = curves[curves["t"].isin([0.0, 1.0])].groupby(["pair", "t"])["test_err"].nunique()
    assert (ends == 1).all()  # every kind passes through the same endpoints
    for figure in ("ensemble_error", "ensemble_diversity", "curves"):
        assert (tmp_path / f"results/ind/figures/{figure}.png").stat().st_size > 10_000
    (tmp_path / "results/ind/weights/seeds~2-3.pt").unlink()
    plan = planned_jobs(snakemake(tmp_path, config, "-n").stdout)
    assert (
        plan["train_shard_keeping_weights"] == 2 and plan["train_curves"] == 1 and "train_shard" not in plan
    )


def test_a_study_with_the_papers_planes_compares_architectures_and_optimizers(tmp_path):
    """Decision regions as Somepalli et al. compute them, through the workflow: planes through test triplets
    (prepared once, stored in the study's tables), 8-connected regions, an architecture x architecture
    agreement matrix per optimizer, and the figures."""
    study = {"model": ["cnn", "mlp"], "optimizer": ["sgd", "adam"], "width": 4, "epochs": 1, "seeds": 2,
             "shifts": ["planes"], "planes": {"triplets": 3, "images": "test", "resolution": 10, "margin": 0.1,
                                              "connectivity": 8}}  # fmt: skip
    config = write_config(tmp_path, arch=study)
    snakemake(tmp_path, config)
    assert (tmp_path / "resources/prepared/digits/planes/test-distinct-3.pt").exists()
    tables = tmp_path / "results/arch/tables"
    regions = pd.read_parquet(tables / "regions.parquet")
    assert (
        len(regions) == 4
        and (regions["connectivity"] == 8).all()
        and regions["reproducibility_pair"].notna().all()
    )
    matrix = pd.read_parquet(tables / "region_agreement.parquet")
    assert len(matrix) == 2 * 2 * 2 and set(matrix.columns) == {
        "optimizer",
        "model_a",
        "model_b",
        "agreement",
    }
    assert len(pd.read_parquet(tables / "triplets.parquet")) == 3
    predictions = pd.read_parquet(
        tmp_path / "results/arch/predictions/model~cnn/optimizer~sgd/seeds~0-1.parquet"
    )
    assert {len(p) for p in predictions.query("shift == 'planes'")["pred"]} == {3 * 10 * 10}
    for figure in ("decision_regions", "double_descent", "region_agreement", "region_bars"):
        assert (tmp_path / f"results/arch/figures/{figure}.png").stat().st_size > 10_000


def test_numbers_written_as_yaml_1_1_reads_them_as_text_are_numbers(tmp_path):
    """PyYAML (YAML 1.1) reads 5e-4 and 1e-3 as strings: the config a researcher writes first plans as meant."""
    config = tmp_path / "config.yaml"
    config.write_text("studies:\n  wd:\n    lr: 1e-3\n    weight_decay: [0, 5e-4, 5e-3]\n    seeds: 2\n")
    done = snakemake(tmp_path, config, "-n")
    assert planned_jobs(done.stdout)["train_shard"] == 1  # the three weight decays: one shard, one stack
    assert "wd: 6 runs in 1 shards" in done.stdout
    config.write_text("studies:\n  wd:\n    lr: -1e-3\n")
    done = snakemake(tmp_path, config, "-n", check=False)
    assert done.returncode != 0 and "parameter 'lr' is out of range: -0.001" in done.stdout + done.stderr


def test_a_key_given_twice_in_a_config_is_refused_naming_the_line(tmp_path):
    """YAML keeps the last of two equal keys silently (2 shards where 4 were meant): planning refuses it."""
    config = tmp_path / "config.yaml"
    config.write_text("studies:\n  s:\n    seeds: 4\n    shard_size: 1\n    seeds: 2\n")
    done = snakemake(tmp_path, config, "-n", check=False)
    assert done.returncode != 0
    assert "line 5: key 'seeds' is given twice (first on line 3)" in done.stdout + done.stderr


def test_a_study_whose_runs_all_diverged_ends_in_figures_that_say_so(tmp_path):
    """Every run diverges (lr 1e20 overflows the head): the workflow still ends in its tables, report and figures,
    which say why they are empty instead of crashing (a log-scaled axis of non-finite losses did)."""
    config = write_config(tmp_path, lost=tiny_study(lr=[1e20, 2e20], seeds=2, epochs=0.5))
    snakemake(tmp_path, config)
    runs = pd.read_parquet(tmp_path / "results/lost/tables/runs.parquet")
    assert runs["diverged"].all() and len(runs) == 4
    assert (tmp_path / "results/lost/report/results.html").exists()
    said = (tmp_path / "results/lost/logs/study_figures.log").read_text()
    assert "wrote 4 placeholder figures (lost: every run diverged, so there is nothing to draw" in said
