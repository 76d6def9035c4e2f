"""The workflow's data jobs: download a published dataset, prepare a dataset or one of its evaluation sets."""

from __future__ import annotations

import time
from pathlib import Path

import click

from chaosgrid.cells import CHOICES, GridError
from chaosgrid.cli.options import (
    STARTED,
    data_root_option,
)
from chaosgrid.downloads import SOURCES
from chaosgrid.evalsets import parse_eval_name
from chaosgrid.plan.blocks import triplets_spec


@click.command("prepare")
@click.option(
    "--dataset",
    "name",
    required=True,
    help=f"A dataset: {', '.join(CHOICES['dataset'])}, or your own (npz:<path>, package.module:function).",
)
@click.option(
    "--eval-set",
    "eval_set",
    metavar="NAME",
    help="Make this evaluation set (jpeg~3, cifar10_1, own_drifted) from the prepared dataset --from; "
    "without it (and --planes), make the dataset itself.",
)
@click.option(
    "--planes",
    "planes_key",
    metavar="IMAGES-CLASSES-COUNT",
    help="Choose the anchors of the probe planes (e.g. test-distinct-500: 500 triplets of test images of "
    "three distinct classes) from the prepared dataset --from.",
)
@click.option(
    "--from",
    "source",
    type=click.Path(exists=True, dir_okay=False),
    help="The prepared dataset an evaluation set or the anchors are made from.",
)
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="The file to write.")
@data_root_option
def prepare(name, eval_set, planes_key, source, out, data_root) -> None:
    """Make a dataset, one of its shifted evaluation sets, or the anchors of its probe planes, once as a file
    every shard job maps.

    The workflow runs this (rules prepare_dataset, prepare_eval_set, prepare_planes) so that a study's shard
    jobs do not each regenerate the same data; `chaosgrid train-shard --prepared NAME=PATH` reads them."""
    if (eval_set or planes_key) and not source:
        raise click.UsageError(
            "--eval-set and --planes make their file from a prepared dataset: give --from PATH"
        )
    import torch

    from chaosgrid import data, inputs, planes, shifts

    torch.set_num_threads(1)  # shifted sets are the same bits whatever machine made them
    try:
        if planes_key:
            spec = triplets_spec(planes_key)
            inputs.save_triplets(planes.anchors(inputs.load_dataset(name, source), spec), out)
        elif not eval_set:
            inputs.save_dataset(data.load(name, data_root), out)
        else:
            try:
                shift, severity = parse_eval_name(eval_set)
            except GridError as err:
                raise click.BadParameter(str(err), param_hint="--eval-set") from err
            x, y = shifts.shifted_set(inputs.load_dataset(name, source), shift, severity, data_root)
            inputs.save_eval_set(x, y, out)
    except GridError as err:
        raise click.BadParameter(str(err), param_hint="--planes") from err
    except (FileNotFoundError, KeyError, ValueError) as err:  # bad data or the user's loader: one line
        raise click.ClickException(str(err)) from err
    click.echo(f"wrote {out} in {time.perf_counter() - STARTED:.1f} s")


@click.command("download")
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
