"""`chaosgrid status`: shards done, and the unfinished shards' last log lines, from the results folder alone."""

import os
import re

from click.testing import CliRunner

from chaosgrid.cli import main


def test_status_counts_done_shards_and_shows_the_last_line_of_each_unfinished_one(tmp_path):
    study = tmp_path / "results/wd_lr"
    for key in ("lr~0.1/seeds~0-7", "lr~0.1/seeds~8-11"):
        (study / "runs" / key).parent.mkdir(parents=True, exist_ok=True)
        (study / f"runs/{key}.parquet").touch()
        (study / "logs" / key).parent.mkdir(parents=True, exist_ok=True)
        (study / f"logs/{key}.log").write_text("done\n")
    (study / "logs/lr~0.2").mkdir()
    (study / "logs/lr~0.2/seeds~0-7.log").write_text("loading\nepoch 3/10, 8 runs, 12 s\n")
    os.utime(study / "logs/lr~0.2/seeds~0-7.log", (0, 0))
    (study / "logs/aggregate.log").write_text("not a shard\n")
    (study / "logs/lr~0.1/seeds~0-7.evaluate.log").write_text(
        "8 runs on 2 sets\n"
    )  # done: its predictions exist
    (study / "predictions/lr~0.1").mkdir(parents=True)
    (study / "predictions/lr~0.1/seeds~0-7.parquet").touch()
    (study / "logs/lr~0.1/seeds~8-11.evaluate.log").write_text("evaluating\n")
    said = CliRunner().invoke(main, ["status", "--results", str(tmp_path / "results")])
    assert said.exit_code == 0
    done, running, evaluating = said.output.splitlines()
    assert done == "wd_lr: 2 shards done (12 runs)"
    assert re.fullmatch(
        r"  lr~0\.2/seeds~0-7: log updated [\d.]+ h ago: epoch 3/10, 8 runs, 12 s", running
    ), running
    assert re.fullmatch(
        r"  lr~0\.1/seeds~8-11\.evaluate: log updated [\d.]+ s ago: evaluating", evaluating
    ), evaluating
    assert "no study results" in CliRunner().invoke(main, ["status", "--results", str(tmp_path)]).output


def test_status_counts_shards_of_those_planned_and_marks_failed_ones(tmp_path):
    """With the workflow's config: "2 of 3 shards"; a shard whose log ends in an error is FAILED."""
    study = tmp_path / "results/s"
    for key in ("lr~0.1/seeds~0-1", "lr~0.2/seeds~0-1"):
        (study / "runs" / key).parent.mkdir(parents=True, exist_ok=True)
        (study / f"runs/{key}.parquet").touch()
    (study / "logs/lr~0.3").mkdir(parents=True)
    (study / "logs/lr~0.3/seeds~0-1.log").write_text(
        "shard seeds~0-1: 2 runs\nError: trainer t:run raised KeyError\n"
    )
    config = tmp_path / "config.yaml"
    config.write_text("studies:\n  s:\n    lr: [0.1, 0.2, 0.3]\n    seeds: 2\n")
    said = CliRunner().invoke(
        main, ["status", "--results", str(tmp_path / "results"), "--configfile", str(config)]
    )
    assert said.exit_code == 0, said.output
    head, failed = said.output.splitlines()
    assert head == "s: 2 of 3 shards done (4 of 6 runs); 1 failed (their logs say why; a rerun retries them)"
    assert re.fullmatch(r"  lr~0\.3/seeds~0-1: FAILED, log updated [\d.]+ s ago: Error: trainer t:run raised KeyError",
                        failed), failed  # fmt: skip
