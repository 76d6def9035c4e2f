"""`snakemake --profile slurm` end to end against a real single-node SLURM cluster started by slurm.sh.

Runs where the cluster can be set up (root, with apt-get): in CI it does. The SLURM executor plugin is a
dependency of chaosgrid, so `--profile slurm` needs nothing installed beyond `make install`.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from workflow_helpers import REPO, SNAKEMAKE, fail_once, snakemake, tiny_study, write_config

HERE = Path(__file__).parent

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="starting a SLURM cluster needs root"),
    pytest.mark.skipif(shutil.which("apt-get") is None, reason="installing SLURM needs apt-get (Debian)"),
]


@pytest.fixture(scope="module")
def cluster_env(tmp_path_factory):
    """Environment for calls that talk to the cluster: its slurm.conf."""
    state = tmp_path_factory.mktemp("slurm")
    started = subprocess.run(
        ["bash", HERE / "slurm.sh", "start", state], capture_output=True, text=True, check=False
    )
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        print(started.stdout)
        yield {"SLURM_CONF": str(state / "slurm.conf")}
    finally:
        subprocess.run(["bash", HERE / "slurm.sh", "stop", state], check=False)


def snakemake_slurm(workdir: Path, config: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    """`snakemake --profile slurm` as a user types it in the repository root (plus where to work)."""
    cmd = ["timeout", "-k", "10", "400", SNAKEMAKE, "--profile", "slurm", "--directory", str(workdir),
           "--configfile", str(config), *args]  # fmt: skip
    full_env = {**os.environ, "PATH": f"{Path(SNAKEMAKE).parent}:{os.environ['PATH']}", **env}
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=full_env, check=False)
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


def test_grid_through_slurm_matches_local_run_retries_a_failed_job_and_reruns_nothing(tmp_path, cluster_env):
    """One cluster run (the first shard job failing once), checked against a local run of the same grid."""
    config = write_config(tmp_path, tiny=tiny_study(seeds=2))  # two shards, one per lr
    on_cluster, local = tmp_path / "cluster", tmp_path / "local"
    marker = tmp_path / "failed-once"
    done = snakemake_slurm(on_cluster, config, {**cluster_env, **fail_once(marker)})
    assert marker.exists()  # the first attempt of a shard job failed ... and was retried: the SLURM job's own
    # Snakemake (the jobstep executor) honours `retries`, inside the same allocation (no new submission)
    output = done.stdout + done.stderr
    ids = [int(i) for i in re.findall(r"submitted with SLURM jobid (\d+)", output)]
    assert len(ids) == 2 + 2 + 7  # digits and its jpeg set prepared, two shards, aggregate, figures, report
    # tables, variance and compare with figures
    history = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i %j %T"], capture_output=True, text=True,
                             env={**os.environ, **cluster_env}, check=True).stdout  # fmt: skip
    for jobid in ids:
        assert re.search(rf"^{jobid} \S+ COMPLETED$", history, re.MULTILINE), history

    snakemake(local, config)
    tables = ("runs", "evals", "summary")
    columns = {"runs": ["cell_id", "train_loss", "test_acc"], "evals": None, "summary": None}
    for table in tables:
        a, b = (pd.read_parquet(d / f"results/tiny/tables/{table}.parquet", columns=columns[table]) for d in
                (on_cluster, local))  # fmt: skip
        sort = list(a.columns[:3])
        pd.testing.assert_frame_equal(
            a.sort_values(sort, ignore_index=True), b.sort_values(sort, ignore_index=True)
        )

    again = snakemake_slurm(on_cluster, config, cluster_env)
    assert "submitted with SLURM jobid" not in again.stdout + again.stderr
    assert "Nothing to be done" in again.stdout + again.stderr


def test_jobs_follow_compute_and_bundle_into_few_submissions(tmp_path, cluster_env):
    """2 widths x 2 lr x 16 seeds of tiny runs, no shard_size: planning sizes shards by compute and packs each
    width's two learning rates into one shard of 32 runs, trained as one stack (width~4/lr~0.05+0.1/...: a key that a
    job's own Snakemake, started by SLURM with --target-jobs, reads back), and `groups` bundles the 2 shards
    into one SLURM job: 1 submission for 64 runs, where blocks of 8 each submitted alone made 8. Every sbatch
    call is counted."""
    study = tiny_study(seeds=16, width=[4, 6])
    del study["shard_size"]
    config = write_config(tmp_path, tiny=study)
    bundled = ["--groups", "train_shard=shards", "--group-components", "shards=2"]
    done = snakemake_slurm(tmp_path / "work", config, cluster_env, *bundled)
    output = done.stdout + done.stderr
    assert "tiny: 64 runs in 2 shards" in output
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", output)
    assert len(submitted) == 2 + 1 + 7  # digits and its jpeg set, 1 bundle of 2 shards, the study's tables
    shards = sorted(p.name for p in (tmp_path / "work/results/tiny/runs").rglob("*.parquet"))
    assert shards == ["seeds~0-15.parquet"] * 2
    assert (tmp_path / "work/results/tiny/runs/width~4/lr~0.05+0.1/seeds~0-15.parquet").exists()
    runs = pd.read_parquet(tmp_path / "work/results/tiny/tables/runs.parquet", columns=["cell_id"])
    assert len(runs) == 64
