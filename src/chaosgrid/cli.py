"""The `chaosgrid` command: the entry point Snakemake rules call, and the way to run a shard by hand."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from pathlib import Path

import click

from chaosgrid.cells import CHOICES, SEED_KEYS, GridError, cell_id
from chaosgrid.downloads import SOURCES
from chaosgrid.evalsets import CLEAN, eval_name, eval_pairs
from chaosgrid.plan.blocks import triplets_spec
from chaosgrid.plan.paths import eval_file, planes_file
from chaosgrid.plan.specs import CurveJob, Shard

STARTED = time.perf_counter()  # a job's phases are timed from here (interpreter start-up before it: ~0.05 s)
data_root_option = click.option(
    "--data-root",
    type=click.Path(file_okay=False),
    default=lambda: os.environ.get("CHAOSGRID_DATA", "data"),
    show_default="$CHAOSGRID_DATA or ./data",
    help="Where the published datasets (CIFAR-10, -10.1, -10-C) live.",
)


def _own_dataset(ctx, param, value: str) -> str:
    """A --dataset as a study writes it: a built-in name, package.module:function, npz:<path>, a plain .npz
    path, or the mapping {npz: path}; given on as the cell parameter's text form."""
    import yaml

    if value.lstrip().startswith("{"):
        mapping = yaml.safe_load(value)
        if not (isinstance(mapping, dict) and set(mapping) == {"npz"}):
            raise click.BadParameter(f"{value!r}: as a mapping it takes one key, npz: <path>")
        value = f"npz:{mapping['npz']}"
    return f"npz:{value}" if value.endswith(".npz") and not value.startswith("npz:") else value


dataset_option = click.option(
    "--dataset",
    default="digits",
    show_default=True,
    callback=_own_dataset,
    help="A built-in dataset, or your own as a study names it: package.module:function, a .npz path, "
    "npz:<path> or '{npz: <path>}'.",
)


def _spec_text(spec: str) -> str:
    """A spec given inline as JSON, or as @path to a JSON file."""
    if spec.startswith("@"):
        path = Path(spec[1:])
        if not path.exists():
            raise click.BadParameter(f"spec file {path} does not exist", param_hint="--spec")
        return path.read_text()
    return spec


def execution_options(command):
    """The options of how a shard's models run together, as `chaosgrid.engine.Execution` takes them."""
    for option in reversed(
        [
            click.option(
                "--engine",
                "engine_name",
                type=click.Choice(["auto", "loop", "vmap"]),
                default="auto",
                show_default=True,
                help="How the shard's models run together (auto: vmap on GPU, and on "
                "CPU for 8+ runs on small images).",
            ),
            click.option(
                "--channels-last/--contiguous",
                default=False,
                show_default=True,
                help="Memory layout of weights and images (channels-last suits GPU tensor cores and oneDNN).",
            ),
            click.option(
                "--compile/--no-compile",
                "compile_",
                default=False,
                show_default=True,
                help="torch.compile the training forward pass (one-off: ~15-50 s per batch shape on a CPU).",
            ),
        ]
    ):
        command = option(command)
    return command


prepared_option = click.option(
    "--prepared",
    type=click.Path(exists=True, file_okay=False),
    help="Folder of the dataset's prepared inputs (`chaosgrid prepare`): read, memory-mapped, instead of making "
    "the dataset and its shifted sets here.",
)


def _shard(spec: str) -> Shard:
    """The shard a --spec describes, or a usage error naming its bad key."""
    try:
        return Shard.from_json(_spec_text(spec))
    except (GridError, json.JSONDecodeError) as err:
        raise click.BadParameter(str(err), param_hint="--spec") from err


def _device_name(value: str) -> str:
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
        raise click.BadParameter(
            f"{value!r} is not a device; choose auto, cpu, cuda or cuda:N", param_hint="--device"
        )
    return value


device_option = click.option(
    "--device",
    default="auto",
    show_default=True,
    callback=lambda c, p, v: _device_name(v),
    help="auto (CUDA when torch sees a GPU), cpu, cuda or cuda:N.",
)
_CLAIMED: list = []  # the lock file of the GPU this process holds, open until it exits


def claim_gpu(count: int, lock_dir: Path | None = None) -> int:
    """The index of a GPU no other chaosgrid job on this machine holds: the first of `count` whose lock file
    (an exclusive flock, released when the process exits, however it ends) is free. With Snakemake's `gpu`
    resource capping jobs at the GPU count (profiles/gpus), one always is; if none is, the job shares one,
    chosen by its process id."""
    import fcntl
    import tempfile

    folder = Path(lock_dir or tempfile.gettempdir())
    for index in range(count):
        handle = open(folder / f"chaosgrid-cuda{index}.lock", "w")  # noqa: SIM115 (held open on purpose)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _CLAIMED.append(handle)
        return index
    return os.getpid() % count


def _torch_device(name: str):
    """The torch device a checked --device names, or a clear error when torch cannot see that GPU. `auto`
    on a machine with several visible GPUs takes one that no other job holds (`claim_gpu`)."""
    import torch

    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if name == "auto":
        if available > 1:
            return torch.device(f"cuda:{claim_gpu(available)}")
        return torch.device("cuda" if available else "cpu")
    index = int(name.partition(":")[2] or 0)
    if name.startswith("cuda") and index >= available:
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise click.BadParameter(
            f"{name!r}: torch {torch.__version__} ({build}) sees {available} CUDA device(s); "
            f"use --device cpu or auto",
            param_hint="--device",
        )
    return torch.device(name)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chaosgrid")
def main() -> None:
    """chaosgrid: train grids of small classifiers reproducibly and turn them into tables and figures.

    The Snakemake workflow (see the README) calls these commands; each also runs alone.
    """


EXIT_PREEMPTED = 75  # EX_TEMPFAIL: the shard saved its state and stopped when asked; a retry resumes


def _resume_path(runs_path: str) -> str | None:
    """Where a shard writing <folder>/runs/<key>.parquet keeps its state: <folder>/resume/<key>.pt."""
    parts = Path(runs_path).with_suffix(".pt").parts
    if "runs" not in parts[:-1]:
        return None
    at = len(parts) - 1 - parts[::-1].index("runs")
    return str(Path(*parts[:at], "resume", *parts[at + 1 :]))


@main.command("train-shard")
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
    "--save-every seconds and on SIGTERM or SIGUSR1 (then the command exits 75 so that a retry "
    "resumes), removed when the shard is done. Default: for --runs <folder>/runs/<key>.parquet, "
    "<folder>/resume/<key>.pt (where the workflow's shards keep it); else none.",
)
@click.option(
    "--save-every",
    type=click.FloatRange(min=0),
    default=600.0,
    show_default=True,
    envvar="CHAOSGRID_SAVE_EVERY",
    help="Seconds between saves of the state (the workflow sets it from the config's save_every).",
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
    torch_device = _torch_device(device)
    cells = shard.cells()
    phases: dict[str, float] = {}

    def lap(name: str) -> None:  # seconds since the previous phase ended
        phases[name] = time.perf_counter() - STARTED - sum(phases.values())

    lap("imports")
    try:
        inputs = train.shard_inputs(
            shard,
            torch_device,
            engine.Execution(engine_name, channels_last, compile_),
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

    resume_path = resume_path or _resume_path(runs_path)
    resume = Resume(resume_path, shard.to_json(), save_every, click.echo) if resume_path else None
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


@main.command("evaluate-shard")
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
    torch_device = _torch_device(device)
    try:
        inputs = train.shard_inputs(
            shard,
            torch_device,
            engine.Execution(engine_name, channels_last, compile_),
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


@main.command("train-curves")
@click.option(
    "--spec",
    required=True,
    help='Curve job as JSON or @file: {"cell": {parameter: value}, "seeds": [a, b], "kinds": [line, '
    'chain, bezier], "points": 31}; the cell is the recipe that trains each bend.',
)
@click.option(
    "--start",
    "start_path",
    type=click.Path(exists=True, dir_okay=False),
    required=True,
    help="Weights file holding the run with seed index a (t=0).",
)
@click.option(
    "--end",
    "end_path",
    type=click.Path(exists=True, dir_okay=False),
    required=True,
    help="Weights file holding the run with seed index b (t=1).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    required=True,
    help="Output parquet: one row per curve kind x point t.",
)
@click.option(
    "--threads", type=click.IntRange(min=1), default=1, show_default=True, help="Torch CPU threads."
)
@device_option
@data_root_option
@prepared_option
def train_curves(spec, start_path, end_path, out, threads, device, data_root, prepared) -> None:
    """Join two trained runs by mode-connecting curves (line, polygonal chain, Bezier) and evaluate each at
    evenly spaced points of t, BatchNorm recomputed at every point."""
    sys.stdout.reconfigure(line_buffering=True)
    try:
        job = CurveJob.from_json(_spec_text(spec))
    except (GridError, json.JSONDecodeError, KeyError) as err:
        raise click.BadParameter(str(err), param_hint="--spec") from err
    import pyarrow as pa
    import torch

    from chaosgrid import curves, data, inputs, store

    torch.set_num_threads(threads)
    name = job.cell["dataset"]
    try:
        dataset = inputs.load_dataset(name, prepared) if prepared else data.load(name, data_root)
        dataset = dataset.to(_torch_device(device))
        (w1,) = store.starting_weights(start_path, [job.seeds[0]])
        (w2,) = store.starting_weights(end_path, [job.seeds[1]])
    except (FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(
        f"curves {job.key or '(ad hoc)'}: runs {job.seeds[0]} and {job.seeds[1]}, {', '.join(job.kinds)}, "
        f"{dataset.x_train.device}; ready in {time.perf_counter() - STARTED:.1f} s"
    )
    rows = curves.connect(job, dataset, w1, w2, click.echo)
    store.write_table(pa.Table.from_pylist(rows), out)
    click.echo(f"wrote {out} in {time.perf_counter() - STARTED:.1f} s")


@main.command()
@click.option(
    "--evals", type=click.Path(exists=True, dir_okay=False), required=True, help="evals.parquet table."
)
@click.option(
    "--summary", type=click.Path(exists=True, dir_okay=False), required=True, help="summary.parquet table."
)
@click.option(
    "--history", type=click.Path(exists=True, dir_okay=False), required=True, help="history.parquet table."
)
@click.option("--axes", default="", help="Comma-separated axes of the study, in grid order.")
@click.option("--study", default="study", help="Study name for titles.")
@click.option("--outdir", type=click.Path(file_okay=False), required=True, help="Folder for the PNGs.")
def figures(evals, summary, history, axes, study, outdir) -> None:
    """Draw a study's figures (accuracy distribution, mean/std along axes, shifts, training curves)."""
    import pandas as pd

    from chaosgrid.figures import study as study_figures

    evals_df, summary_df, history_df = (
        pd.read_parquet(evals),
        pd.read_parquet(summary),
        pd.read_parquet(history),
    )
    axis_list = [a for a in axes.split(",") if a]
    missing = [a for a in axis_list if a not in evals_df.columns]
    if missing:
        raise click.BadParameter(f"axis {missing[0]!r} is not a column of {evals}", param_hint="--axes")
    out = Path(outdir)
    drawn = study_figures.draw(
        {"evals": evals_df, "summary": summary_df, "history": history_df}, axis_list, study, out
    )
    click.echo(f"wrote {drawn} to {out}")


@main.command("analysis-figures")
@click.option(
    "--analysis", "name", required=True, help="A declared analysis (chaosgrid.plan.analyses.ANALYSES)."
)
@click.option(
    "--tables",
    "folder",
    type=click.Path(exists=True, file_okay=False),
    required=True,
    help="A study's tables folder, holding the analysis's parquet tables.",
)
@click.option("--axes", default="", help="Comma-separated axes of the study, in grid order.")
@click.option("--study", default="study", help="Study name for titles.")
@click.option("--outdir", type=click.Path(file_okay=False), required=True, help="Folder for the PNGs.")
def analysis_figures(name, folder, axes, study, outdir) -> None:
    """Draw the figures of one analysis of a study (variance, regions, ...) from its tables."""
    import pandas as pd

    from chaosgrid.plan.analyses import ANALYSES

    if name not in ANALYSES:
        raise click.BadParameter(
            f"unknown analysis {name!r}; choose from {', '.join(ANALYSES)}", param_hint="--analysis"
        )
    analysis = ANALYSES[name]
    names = (*analysis.tables, *analysis.reads)
    missing = [t for t in names if not (Path(folder) / f"{t}.parquet").exists()]
    if missing:
        raise click.BadParameter(f"{folder} has no {missing[0]}.parquet", param_hint="--tables")
    tables = {t: pd.read_parquet(Path(folder) / f"{t}.parquet") for t in names}
    drawn = analysis.function("draw")(tables, [a for a in axes.split(",") if a], study, Path(outdir))
    click.echo(f"wrote {drawn} to {outdir}")


@main.command("report-tables")
@click.option(
    "--tables",
    "folder",
    type=click.Path(exists=True, file_okay=False),
    required=True,
    help="A study's tables folder.",
)
@click.option("--names", required=True, help="Comma-separated tables to render, e.g. summary,variance.")
@click.option("--study", default="study", help="Study name for titles.")
@click.option(
    "--study-config", help="The study's config block as JSON: also write overview.html (what it runs)."
)
@click.option("--outdir", type=click.Path(file_okay=False), required=True, help="Folder for the HTML pages.")
@click.option(
    "--figures",
    type=click.Path(exists=True, file_okay=False),
    help="The study's figures folder: with --study-config, also write results.html (its question, "
    "headline numbers, and every figure with its caption).",
)
@click.option(
    "--captions",
    type=click.Path(exists=True, file_okay=False),
    help="Folder of the figures' report captions (workflow/report/<figure>.rst).",
)
def report_tables(folder, names, study, study_config, outdir, figures, captions) -> None:
    """Render a study's tables as HTML pages for the Snakemake report (the parquet files stay the data), its
    overview, and its results page."""
    import pandas as pd

    from chaosgrid import report_tables as pages
    from chaosgrid.plan.analyses import study_figures
    from chaosgrid.plan.blocks import study_axes

    wanted = [n for n in names.split(",") if n]
    missing = [n for n in wanted if not (Path(folder) / f"{n}.parquet").exists()]
    if missing:
        raise click.BadParameter(f"{folder} has no {missing[0]}.parquet", param_hint="--names")
    tables = {name: pd.read_parquet(Path(folder) / f"{name}.parquet") for name in wanted}
    for name, frame in tables.items():
        shown = pages.narrow_comparisons(frame) if name == "comparisons" else frame
        pages.html_table(shown, f"{study}: {name}", Path(outdir) / f"{name}.html")
    written = len(wanted)
    if study_config:
        declared = json.loads(study_config)
        runs = Path(folder) / "runs.parquet"  # written with the summary: the shards a grown study kept
        finished = (
            pd.read_parquet(runs, columns=["shard"])["shard"].unique().tolist() if runs.exists() else []
        )
        pages.html_table(
            pages.study_overview(study, declared, finished),
            f"{study}: what it runs",
            Path(outdir) / "overview.html",
            wrap=True,
        )
        written += 1
        if figures and {"summary", "variance", "comparisons", "churn"} <= set(tables):
            axes = list(study_axes(declared))
            shown = [
                (
                    f,
                    Path(figures) / f"{f}.png",
                    pages.caption_html((Path(captions) / f"{f}.rst").read_text(), study) if captions else "",
                )
                for f in study_figures(declared)
            ]
            lines = pages.headline(
                *(tables[t] for t in ("summary", "variance", "comparisons", "churn")), axes
            )
            pages.results_page(
                study, pages.question_of(declared, axes), lines, shown, Path(outdir) / "results.html"
            )
            written += 1
    click.echo(f"wrote {written} pages to {outdir}")


@main.command("check-model")
@click.argument("model")
@dataset_option
@click.option("--width", type=click.IntRange(1), default=8, show_default=True)
@data_root_option
def check_model(model, dataset, width, data_root) -> None:
    """Check a model (built-in, or your own package.module:function) before a grid uses it: its parameters
    and FLOPs per example, whether vmap stacks it, and whether K=3 runs stepped together equal each alone
    (two steps in float64, on each engine it can run on)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from chaosgrid import data, engine, recipe, train
    from chaosgrid.cells import validate_cell

    torch.set_num_threads(1)
    try:
        cells = [
            validate_cell(
                {
                    "model": model,
                    "dataset": dataset,
                    "width": width,
                    "epochs": 1,
                    "batch_size": 8,
                    "warmup": 0,
                    "init_seed": i,
                    "order_seed": i,
                    "aug_seed": i,
                }
            )
            for i in range(3)
        ]
        ds = data.load(dataset, data_root)
        one = train.init_model(cells[0], ds.normalize(ds.x_train[:64]), ds.num_classes)
    except (GridError, ValueError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from err
    x = ds.normalize(ds.x_train[:16]).double()
    y = ds.y_train[:16]
    with FlopCounterMode(display=False) as flops:
        one.eval()(ds.normalize(ds.x_train[:1]))
    click.echo(
        f"{model} on {dataset} (width {width}, {ds.num_classes} classes, inputs {tuple(x.shape[1:])}): "
        f"{sum(p.numel() for p in one.parameters()):,} parameters, "
        f"{flops.get_total_flops() / 1e6:.2f} MFLOP per example (forward)"
    )
    draws = train.random_draws(one, ds.normalize(ds.x_train[:4]))
    own = " (each run draws from its own seed, on the loop engine)"
    click.echo(f"random draws: {', '.join(draws) + own if draws else 'none'}")
    why = train.unstackable(cells[0], ds)
    click.echo(f"vmap: {'stacks it' if not why else 'cannot stack it (' + why + '); shards use the loop'}")
    failed = False
    for name in ["loop"] + (["vmap"] if not why else []):
        execution = engine.Execution(name)
        together = train.build_stack(cells, x, ds.num_classes, execution)
        recipe.fit(together, cells, x, y, execution)
        worst = 0.0
        for r, cell in enumerate(cells):
            alone = train.build_stack([cell], x, ds.num_classes, execution)
            recipe.fit(alone, [cell], x, y, execution)
            pairs = zip(together.state_dicts()[r].values(), alone.state_dicts()[0].values(), strict=True)
            worst = max(worst, max(float((a.double() - b.double()).abs().max()) for a, b in pairs))
        ok = worst <= 1e-10
        failed |= not ok
        click.echo(
            f"{name}: 3 runs together {'equal' if ok else 'DIFFER from'} each run alone (max |difference| "
            f"{worst:.1e} after 2 steps, float64)"
        )
    if failed:
        raise click.ClickException(
            "runs trained together influence each other: state shared across the stack "
            "(a module-level tensor, buffer or RNG of its own that runs share)"
        )


@main.command("check-trainer")
@click.argument("trainer")
@dataset_option
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="A parameter or own key of the run (repeat), e.g. --set hidden=16; values read as YAML.",
)
@data_root_option
def check_trainer(trainer, dataset, settings, data_root) -> None:
    """Check your own trainer (package.module:function, or 'command:...') before a grid uses it: run one run
    twice with equal seeds and once with other seeds, and say whether the predictions are equal, then
    different (the trainer must make its runs from the seeds it is given), and that its output keeps the
    contract (chaosgrid.trainers)."""
    import numpy as np
    import torch
    import yaml

    from chaosgrid import data, evalsets, shifts, trainers
    from chaosgrid.cells import validate_cell

    torch.set_num_threads(1)
    params = {"trainer": trainer, "dataset": dataset}
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep:
            raise click.BadParameter(f"{setting!r} is not KEY=VALUE", param_hint="--set")
        params[key] = yaml.safe_load(value)
    try:
        cell = validate_cell(params)
        ds = data.load(dataset, data_root)
        sets = shifts.eval_sets(ds, evalsets.eval_pairs([], []))
        other = validate_cell({**params, **{key: cell[key] + 1 for key in SEED_KEYS}})
        first, second, third = (trainers.train_runs([c], ds, sets)[0] for c in (cell, cell, other))
    except (GridError, ValueError, FileNotFoundError, trainers.TrainerError) as err:
        raise click.ClickException(str(err)) from err
    equal = lambda a, b: (
        np.array_equal(a.evals[CLEAN].pred, b.evals[CLEAN].pred)
        and np.array_equal(a.evals[CLEAN].p_true, b.evals[CLEAN].p_true)
    )
    same, moved = equal(first, second), not equal(first, third)
    click.echo(
        f"{trainer} on {dataset}: the contract holds (test accuracy {first.evals[CLEAN].acc:.4f}); "
        f"two runs with equal seeds give {'equal' if same else 'DIFFERENT'} predictions; a run with other "
        f"seeds gives {'different' if moved else 'the SAME'} predictions"
    )
    if not same:
        raise click.ClickException(
            "the trainer does not make its runs from the seeds it is given (init_seed, "
            "order_seed, aug_seed): runs cannot be reproduced, nor seeds told apart"
        )
    if not moved:
        raise click.ClickException(
            "the trainer ignores the seeds it is given (init_seed, order_seed, aug_seed): "
            "every seed makes the same run, so a study would report a run-to-run std of 0"
        )


@main.command("prepare")
@click.option(
    "--dataset",
    "name",
    required=True,
    help=f"A dataset: {', '.join(CHOICES['dataset'])}, or your own (npz:<path>, package.module:function).",
)
@click.option(
    "--eval-set",
    "eval_set",
    metavar="SHIFT~SEVERITY",
    help="Make this shifted evaluation set (e.g. jpeg~3; cifar10_1~0) from the prepared dataset in "
    "--out; without it (and --planes), make the dataset itself.",
)
@click.option(
    "--planes",
    "planes_key",
    metavar="IMAGES-CLASSES-COUNT",
    help="Choose the anchors of the probe planes (e.g. test-distinct-500: 500 triplets of test images of "
    "three distinct classes) from the prepared dataset in --out.",
)
@click.option(
    "--out", type=click.Path(file_okay=False), required=True, help="The dataset's prepared-inputs folder."
)
@data_root_option
def prepare(name, eval_set, planes_key, out, data_root) -> None:
    """Make a dataset, one of its shifted evaluation sets, or the anchors of its probe planes, once as a file
    every shard job maps.

    The workflow runs this (rules prepare_dataset, prepare_eval_set, prepare_planes) so that a study's shard
    jobs do not each regenerate the same data; `chaosgrid train-shard --prepared OUT` reads the files."""
    import torch

    from chaosgrid import data, inputs, planes, shifts

    torch.set_num_threads(1)  # shifted sets are the same bits whatever machine made them
    try:
        if planes_key:
            spec = triplets_spec(planes_key)
            path = planes_file(out, planes_key)
            inputs.save_triplets(planes.anchors(inputs.load_dataset(name, out), spec), path)
        elif not eval_set:
            path = inputs.save_dataset(data.load(name, data_root), out)
        else:
            shift, _, severity = eval_set.partition("~")
            if not severity.isdigit():
                raise click.BadParameter(f"{eval_set!r} is not SHIFT~SEVERITY", param_hint="--eval-set")
            x, y = shifts.shifted_set(inputs.load_dataset(name, out), shift, int(severity), data_root)
            path = eval_file(out, shift, int(severity))
            inputs.save_eval_set(x, y, path)
    except GridError as err:
        raise click.BadParameter(str(err), param_hint="--planes") from err
    except (FileNotFoundError, KeyError, ValueError) as err:  # bad data or the user's loader: one line
        raise click.ClickException(str(err)) from err
    click.echo(f"wrote {path} in {time.perf_counter() - STARTED:.1f} s")


@main.command("download")
@click.argument("name", type=click.Choice(sorted(SOURCES)))
@data_root_option
@click.option(
    "--file",
    "files",
    nargs=2,
    multiple=True,
    metavar="URL MD5",
    help="Fetch these files instead of the official ones (a mirror); repeat for each file.",
)
def download_command(name, data_root, files) -> None:
    """Download a published dataset (cifar10, cifar10_1, cifar10_c) into DATA_ROOT, checksums verified.

    The dataset's folder appears only when every file is verified and unpacked; a failure leaves nothing.
    The workflow runs this itself (rule download_data) for the studies that need it."""
    from chaosgrid.downloads import DownloadError, Source, download

    source = Source(SOURCES[name].folder, tuple(files)) if files else SOURCES[name]
    try:
        download(name, Path(data_root), source)
    except DownloadError as err:
        raise click.ClickException(str(err)) from err


def _parse_point(pairs: tuple[str, ...], option: str) -> dict[str, str]:
    point = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint=option)
        point[key] = value
    return point


def _study_folder(results: str, study: str) -> Path:
    """results/<study>, once its workflow has made its tables; else a usage error listing the studies that have."""
    results = Path(results)
    if not results.is_dir():
        raise click.BadParameter(
            f"no folder {results}: run this where you ran snakemake, or pass the results folder",
            param_hint="--results",
        )
    runs_path = results / study / "tables" / "runs.parquet"
    if not runs_path.exists():
        done = sorted(p.parent.parent.name for p in results.glob("*/tables/runs.parquet"))
        raise click.BadParameter(
            f"{runs_path} does not exist: run the study's workflow first (studies with tables: "
            f"{', '.join(done) or 'none'})",
            param_hint="--study",
        )
    return results / study


@main.command("status")
@click.option(
    "--results",
    type=click.Path(file_okay=False),
    default="results",
    show_default=True,
    help="The workflow's results folder.",
)
@click.option(
    "--configfile",
    type=click.Path(dir_okay=False, exists=True),
    help="The config the workflow runs: its studies' shards and runs done of those planned.",
)
def status_command(results, configfile) -> None:
    """Where the workflow stands: per study, shards and runs done (of those planned, with --configfile); then
    every shard whose tables do not exist yet with the last line of its log, which a running shard updates at
    least once a minute, and FAILED where the log ends in an error. Reads the results folder (and the config):
    run it beside a running `snakemake`, or on a cluster's login node."""
    import yaml

    from chaosgrid.status import status

    config = yaml.safe_load(Path(configfile).read_text()) if configfile else None
    try:
        click.echo("\n".join(status(Path(results), config)))
    except GridError as err:
        raise click.ClickException(str(err)) from err


@main.command("export")
@click.option("--study", required=True, help="A study whose tables exist (results/<study>/tables/).")
@click.option(
    "--table", "tables", multiple=True, metavar="NAME", help="A table to export (repeat; default: all)."
)
@click.option(
    "--format",
    "output",
    type=click.Choice(["csv", "json"]),
    default="csv",
    show_default=True,
    help="csv: one header row; json: a list of records.",
)
@click.option(
    "--results",
    default="results",
    show_default=True,
    help="Folder holding <study>/ (the workflow's results/).",
)
@click.option(
    "--out", type=click.Path(file_okay=False), help="Folder to write to [default: results/<study>/export]."
)
def export_command(study, tables, output, results, out) -> None:
    """Write a study's tables (results/<study>/tables/*.parquet) as CSV or JSON, for tools that do not read
    parquet. Each file is written whole or not at all."""
    import pandas as pd

    from chaosgrid.store import write_atomically

    folder = _study_folder(results, study)
    found = {p.stem: p for p in sorted((folder / "tables").glob("*.parquet"))}
    if unknown := [t for t in tables if t not in found]:
        raise click.BadParameter(
            f"{study} has no table {unknown[0]!r}; its tables: {', '.join(found)}", param_hint="--table"
        )
    target = Path(out) if out else folder / "export"
    for name in tables or found:
        frame = pd.read_parquet(found[name])
        path = target / f"{name}.{output}"
        if output == "csv":
            write_atomically(path, lambda tmp, frame=frame: frame.to_csv(tmp, index=False))
        else:
            write_atomically(path, lambda tmp, frame=frame: frame.to_json(tmp, orient="records", indent=1))
        click.echo(f"{path}: {len(frame)} rows")


@main.command("compare")
@click.option(
    "--study", required=True, help="A study whose tables exist (results/<study>/tables/runs.parquet)."
)
@click.option(
    "--axis",
    help="Compare neighbouring values along this axis: pooled over the other axes (a main "
    "effect), then at each of their values.",
)
@click.option(
    "--a",
    "a_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Grid point A (repeat for each axis; name fewer axes to pool over the others).",
)
@click.option(
    "--b", "b_pairs", multiple=True, metavar="KEY=VALUE", help="Grid point B, naming the same axes as A."
)
@click.option(
    "--eval",
    "eval_set",
    default="clean",
    show_default=True,
    metavar="SET",
    help="The evaluation set: clean, a shift at a severity (contrast:2), or a one-version set (cifar10_1).",
)
@click.option(
    "--level",
    type=click.FloatRange(0.5, 0.999),
    default=0.95,
    show_default=True,
    help="Confidence level of the intervals (the verdicts' test is at 1 - level).",
)
@click.option(
    "--results",
    default="results",
    show_default=True,
    help="Folder holding <study>/ (the workflow's results/).",
)
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "json", "csv"]),
    default="text",
    show_default=True,
    help="text for reading; json or csv (one row per comparison, fractions, not points) for scripts.",
)
def compare_command(study, axis, a_pairs, b_pairs, eval_set, level, results, output) -> None:
    """Is the difference between grid points real, and how many seeds would show it?

    Splits the uncertainty of a difference in mean accuracy into run-to-run variation (per-example coin
    flips and distribution-wise spread) and the test-set draw, and answers two questions: is A better on
    this test set, and on the distribution? Naming fewer axes in --a/--b than the study has pools over the
    others (a main effect, with a line on whether the effect differs between them). Several comparisons get
    Holm-adjusted verdicts beside their own. Then: runs per arm to detect 0.1-1 point differences. Reads
    results/<study>/tables/runs.parquet and the study's predictions files; the words are defined in
    docs/statistics.md.
    """
    import pandas as pd

    from chaosgrid.analysis import compare as c
    from chaosgrid.store import parameter_columns

    if bool(axis) == bool(a_pairs or b_pairs):
        raise click.UsageError("give either --axis NAME or both --a KEY=VALUE ... and --b KEY=VALUE ...")
    folder = _study_folder(results, study)
    runs = pd.read_parquet(folder / "tables" / "runs.parquet")
    axes = [k for k in parameter_columns(list(runs.columns)) if k not in SEED_KEYS and runs[k].nunique() > 1]
    if "variant" in axes:  # a variant's own settings are not axes of their own
        axes = [a for a in axes if a == "variant" or runs.groupby("variant")[a].nunique().max() > 1]
    sets = c.eval_points(runs, sorted(str(f) for f in (folder / "predictions").rglob("*.parquet")), axes)
    names = {eval_name(*key): key for key in sets}
    if eval_set not in names:
        raise click.BadParameter(
            f"{study} has no evaluation set {eval_set!r}; its sets: {', '.join(names)}", param_hint="--eval"
        )
    points, orders = sets[names[eval_set]], c.value_orders(runs, axes)
    try:
        if axis:
            if axis not in axes:
                raise ValueError(f"--axis: {axis!r} is not an axis of {study}; its axes: {', '.join(axes)}")
            rows = [r for r in c.neighbours(points, axes, orders, level) if r["axis"] == axis]
        else:
            a, b = (
                c.chosen_values(_parse_point(pairs, option), axes, orders, option)
                for option, pairs in (("--a", a_pairs), ("--b", b_pairs))
            )
            rows = c.between(points, axes, a, b, level)
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    rows = c.holm(rows, level)
    if output != "text":
        table = pd.DataFrame([{"eval": eval_set, **r} for r in rows])
        click.echo(
            table.to_json(orient="records", indent=1)
            if output == "json"
            else table.to_csv(index=False).rstrip()
        )
        return
    click.echo(
        f"{study}: accuracy on the {eval_set} test set, {100 * level:g}% intervals, differences in points (%)"
    )
    for line in c.left_out(runs, axes, points) + c.seedless(points, axes):
        click.echo(line)
    click.echo(c.describe(rows, level) or "no pair of grid points with 2+ runs each")


@main.command("schema")
@click.option(
    "--repo",
    type=click.Path(exists=True, file_okay=False),
    default=".",
    show_default=True,
    help="The chaosgrid checkout whose files to check or rewrite.",
)
@click.option("--write", is_flag=True, help="Rewrite the files instead of checking them.")
def schema_command(repo, write) -> None:
    """Check (or with --write regenerate) what derives from chaosgrid.cells.PARAMETERS: the config schema's
    cell parameters and config/README.md's tables. Exits 1 naming each file that has drifted."""
    from chaosgrid.cells import render_readme, render_schema

    files = {
        Path(repo) / "workflow/schemas/config.schema.yaml": render_schema,
        Path(repo) / "config/README.md": render_readme,
    }
    drifted = []
    for path, render in files.items():
        text = path.read_text()
        wanted = render(text)
        if wanted != text:
            drifted.append(str(path))
            if write:
                path.write_text(wanted)
    if drifted and not write:
        raise click.ClickException(
            f"out of date with chaosgrid.cells.PARAMETERS: {', '.join(drifted)}; run "
            f"`chaosgrid schema --write`"
        )
    click.echo(f"rewrote {', '.join(drifted)}" if drifted else "schema and README tables are up to date")


@main.command("model-sizes")
@click.option("--write", is_flag=True, help="Rewrite the table instead of checking it.")
def model_sizes_command(write) -> None:
    """Check (or with --write remake) chaosgrid/model_sizes.json, the built-in models' parameters and
    activation bytes by width that planning estimates a shard's memory from, measured on torch's meta device."""
    from chaosgrid import footprint, models

    entries = [f"{json.dumps(key)}: {json.dumps(sizes)}" for key, sizes in models.size_table().items()]
    wanted = "{\n" + ",\n".join(entries) + "\n}\n"  # an entry a line
    if footprint.TABLE.read_text() == wanted:
        click.echo(f"{footprint.TABLE} is up to date")
    elif write:
        footprint.TABLE.write_text(wanted)
        click.echo(f"rewrote {footprint.TABLE}")
    else:
        raise click.ClickException(
            f"{footprint.TABLE} is out of date with chaosgrid.models: run `chaosgrid model-sizes --write`"
        )


def exit_on_sigterm() -> None:
    """SIGTERM (what SLURM and Snakemake send a job first) raises SystemExit(143) in the main thread, so every
    cleanup on the way out runs (a temporary file being written is removed) instead of dying mid-write."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def entry() -> None:
    """The `chaosgrid` console command: `main`, then an exit that skips the interpreter's teardown.

    Once a command has returned, its files are written and closed; what remains is Python freeing torch and
    a shard's tensors, 0.6-1.3 s per job measured here (4-5% of a 64-run default-grid job). Output is
    flushed first, and the exit status is main's."""
    exit_on_sigterm()
    try:
        main()
    except SystemExit as done:
        if isinstance(done.code, str):
            print(done.code, file=sys.stderr)
        code = done.code if isinstance(done.code, int) else int(done.code is not None and done.code != 0)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    entry()
