"""`chaosgrid train-curves`: the job of rule train_curves, one pair of runs joined by mode-connecting curves."""

from __future__ import annotations

import json
import sys
import time

import click

from chaosgrid.cells import GridError
from chaosgrid.cli.options import (
    STARTED,
    _spec_text,
    data_root_option,
    device_of,
    device_option,
    prepared_option,
)
from chaosgrid.plan.specs import CurveJob


@click.command("train-curves")
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
        dataset = inputs.load_dataset(name, prepared["data"]) if prepared else data.load(name, data_root)
        dataset = dataset.to(device_of(device))
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
