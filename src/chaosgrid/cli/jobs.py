"""The workflow's training jobs: train a shard, evaluate a shard's kept weights, train a pair's curves."""

from __future__ import annotations

import math
import resource
import signal
import sys
import time

import click

from chaosgrid.cells import cell_id
from chaosgrid.cli.options import (
    EXIT_PREEMPTED,
    STARTED,
    _shard,
    data_root_option,
    device_of,
    device_option,
    execution_options,
    prepared_option,
)
from chaosgrid.evalsets import CLEAN, eval_pairs


@click.command("train-shard")
@click.option(
    "--spec",
    required=True,
    help='Shard as JSON or @file: {"base": {parameter: value}, "seeds": [0, 1, ...], '
    '"shifts": [...], "severities": [...]}. Parameters left out take their defaults.',
)
@click.option(
    "--runs", "runs_path", type=click.Path(dir_okay=False), required=True, help="Output runs parquet."
)
@click.option(
    "--predictions",
    "predictions_path",
    type=click.Path(dir_okay=False),
    required=True,
    help="Output predictions parquet (run x checkpoint x evaluation set).",
)
@click.option(
    "--history",
    "history_path",
    type=click.Path(dir_okay=False),
    help="Output history parquet (run x epoch: train loss, accuracy, lr).",
)
@click.option(
    "--weights",
    "weights_path",
    type=click.Path(dir_okay=False),
    help="Output weights file (state dicts by run and checkpoint); required when the spec keeps weights.",
)
@click.option(
    "--init-weights",
    "init_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Weights file of the shard these runs start from (runs with init_from).",
)
@click.option(
    "--threads",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Torch CPU threads; results are bit-identical only at equal thread counts.",
)
@device_option
@execution_options
@data_root_option
@prepared_option
@click.option(
    "--resume",
    "resume_path",
    type=click.Path(dir_okay=False),
    help="File of the shard's saved state: resumed from when it holds this spec's, written every "
    "--save-every minutes and on SIGTERM or SIGUSR1 (then the command exits 75 so that a retry "
    "resumes), removed when the shard is done. The workflow gives results/<study>/resume/<shard>.pt.",
)
@click.option(
    "--save-every",
    type=click.FloatRange(min=0, min_open=True),
    help="Minutes between saves of the state with --resume (the workflow gives the config's save_every); "
    "without it, the state is saved only when the job is signalled.",
)
def train_shard(
    spec,
    runs_path,
    predictions_path,
    history_path,
    weights_path,
    init_path,
    threads,
    device,
    engine_name,
    channels_last,
    compile_,
    data_root,
    prepared,
    resume_path,
    save_every,
) -> None:
    """Train one shard's runs together and write its tables (and weights, when kept) atomically.

    With --resume, a shard killed or preempted after a save continues where it was, and its tables come out
    bit-identical to an uninterrupted run's on the same machine and threads."""
    sys.stdout.reconfigure(line_buffering=True)  # progress reaches log files as it happens
    shard = _shard(spec)
    if shard.weights and not weights_path:
        raise click.UsageError('the spec keeps weights ("weights": true): give --weights PATH')
    if shard.base["init_from"] and not init_path:
        raise click.UsageError(
            f"the runs start from study {shard.base['init_from']!r}: give --init-weights PATH"
        )

    import torch

    from chaosgrid import engine, models, recipe, store, train, trainers
    from chaosgrid.plugins import PluginError
    from chaosgrid.resume import Resume

    torch.set_num_threads(threads)
    torch_device = device_of(device)
    cells = shard.cells()
    phases: dict[str, float] = {}

    def lap(name: str) -> None:  # seconds since the previous phase ended
        phases[name] = time.perf_counter() - STARTED - sum(phases.values())

    lap("imports")
    try:
        inputs = train.shard_inputs(
            shard,
            torch_device,
            engine.Execution(engine_name, channels_last, compile_, shard.stack),
            data_root,
            prepared,
            init_path,
            click.echo,
        )
    except (FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    lap("inputs")
    click.echo(
        f"shard {shard.key or '(ad hoc)'}: {len(cells)} runs, {len(inputs.sets)} eval sets, {torch_device} "
        f"({inputs.execution}, {threads} threads); ready in {time.perf_counter() - STARTED:.1f} s"
    )

    def progress(result) -> None:
        status = (
            f"DIVERGED at step {result.diverged_step}"
            if result.diverged_step >= 0
            else (f"test_acc {result.evals[CLEAN].acc:.4f}")
        )
        click.echo(
            f"  [{cells.index(result.cell) + 1}/{len(cells)}] {cell_id(result.cell)} seeds "
            f"{result.cell['init_seed']}/{result.cell['order_seed']}/{result.cell['aug_seed']} "
            f"{status}  {result.wall_s:.1f} s"
        )

    every = 60 * save_every if save_every else math.inf  # seconds, as the fit's clock counts
    resume = Resume(resume_path, shard.to_json(), every, click.echo) if resume_path else None
    if resume:  # SLURM signals before a time limit or preemption: save, then exit for the retry to resume
        for signum in (signal.SIGTERM, signal.SIGUSR1):
            signal.signal(signum, lambda signum, frame: setattr(resume, "requested", True))
    try:
        if shard.base["trainer"]:  # the user's own training code trains each run
            results = trainers.train_runs(cells, inputs.data, inputs.sets, progress, shard.probabilities)
        else:
            results = train.train_shard(
                cells,
                inputs.data,
                inputs.sets,
                inputs.execution,
                progress,
                shard.checkpoints,
                shard.weights,
                inputs.start,
                log=click.echo,
                probabilities=shard.probabilities,
                resume=resume,
            )
    except recipe.Preempted as stopped:
        click.echo(f"stopped on request: {stopped}; {resume_path} holds the state a retry resumes from")
        sys.exit(EXIT_PREEMPTED)
    except (
        trainers.TrainerError,
        PluginError,
    ) as err:  # the user's code broke its contract: its message only
        raise click.ClickException(str(err)) from err
    lap("runs")
    device_name = torch.cuda.get_device_name(torch_device) if torch_device.type == "cuda" else "cpu"
    prov = store.provenance(device_name, threads, inputs.execution.provenance())
    names = models.parameter_names(
        shard.base["model"],
        tuple(inputs.data.x_train.shape[1:]),
        inputs.data.num_classes,
        shard.base["width"],
    )
    paths = {
        "weights": weights_path,
        "history": history_path,
        "predictions": predictions_path,
        "runs": runs_path,
    }
    written = store.write_shard(results, shard, paths, prov, names)
    lap("writing")
    total = sum(phases.values())
    overhead = total - phases["runs"]
    if resume:
        resume.remove()
    click.echo(f"wrote {', '.join(map(str, written))}")
    click.echo(
        "phases (s): "
        + ", ".join(f"{name} {sec:.2f}" for name, sec in phases.items())
        + f"; overhead {overhead:.2f} s = {100 * overhead / total:.1f}% of {total:.2f} s"
    )
    # what `chaosgrid rehearse` checks planning's memory estimate against (the true peak: Snakemake's
    # benchmark samples, and misses a short job's)
    click.echo(f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB resident")
    if torch_device.type == "cuda":
        click.echo(f"peak GPU memory {torch.cuda.max_memory_reserved(torch_device) / 1e6:.0f} MB reserved")


@click.command("evaluate-shard")
@click.option(
    "--spec",
    required=True,
    help="The shard's spec, as for train-shard: its shifts (and severities, planes) are the sets evaluated.",
)
@click.option(
    "--weights",
    "weights_path",
    type=click.Path(exists=True, dir_okay=False),
    required=True,
    help="The shard's weights file (train-shard --weights).",
)
@click.option(
    "--runs",
    "runs_path",
    type=click.Path(exists=True, dir_okay=False),
    required=True,
    help="The shard's runs table (which runs diverged).",
)
@click.option(
    "--trained",
    "trained_path",
    type=click.Path(exists=True, dir_okay=False),
    required=True,
    help="The predictions its training made (the clean test set).",
)
@click.option(
    "--predictions",
    "predictions_path",
    type=click.Path(dir_okay=False),
    required=True,
    help="Output predictions parquet: the trained ones and those on every set of the spec.",
)
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True, help="Torch CPU threads.")
@device_option
@execution_options
@data_root_option
@prepared_option
def evaluate_shard(
    spec,
    weights_path,
    runs_path,
    trained_path,
    predictions_path,
    threads,
    device,
    engine_name,
    channels_last,
    compile_,
    data_root,
    prepared,
) -> None:
    """Evaluate a trained shard's kept weights on its shifted and probe sets, at every kept checkpoint.

    The workflow trains a shard that keeps its weights on the clean test set only and evaluates the rest
    here, so that adding a shift to its study re-runs this job and no training."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from chaosgrid import store

    sys.stdout.reconfigure(line_buffering=True)
    shard = _shard(spec)
    trained = pq.read_table(trained_path)
    sets = [key for key in eval_pairs(list(shard.shifts), list(shard.severities)) if key != CLEAN]
    if not sets:
        store.write_table(trained, predictions_path)
        click.echo(f"no shifted or probe sets: {predictions_path} holds the training's predictions")
        return

    import torch

    from chaosgrid import engine, train

    torch.set_num_threads(threads)
    torch_device = device_of(device)
    try:
        inputs = train.shard_inputs(
            shard,
            torch_device,
            engine.Execution(engine_name, channels_last, compile_, shard.stack),
            data_root,
            prepared,
            log=click.echo,
        )
        kept = store.read_weights(weights_path)["runs"]
    except (FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    cells = shard.cells()
    runs = pq.read_table(runs_path, columns=["cell_id", "diverged"]).to_pydict()
    diverged = dict(zip(runs["cell_id"], runs["diverged"], strict=True))
    if missing := [
        i
        for i, c in zip(shard.seed_indices, cells, strict=True)
        if kept.get(i, {}).get("cell_id") != cell_id(c)
    ]:
        raise click.ClickException(
            f"{weights_path} holds no run of this spec with seed index {missing[0]}: "
            f"delete it to have its shard re-run"
        )
    begin = time.perf_counter()
    evaluated = train.evaluate_weights(
        cells,
        [kept[i] for i in shard.seed_indices],
        [diverged[cell_id(c)] for c in cells],
        inputs.data,
        {k: v for k, v in inputs.sets.items() if k != CLEAN},
        inputs.execution,
        shard.probabilities,
    )
    table = pa.concat_tables([trained, store.evaluations_table(evaluated)])
    store.write_table(table, predictions_path)
    click.echo(
        f"{len(cells)} runs on {len(sets)} sets in {time.perf_counter() - begin:.1f} s "
        f"({time.perf_counter() - STARTED:.1f} s in all): wrote {predictions_path}"
    )
