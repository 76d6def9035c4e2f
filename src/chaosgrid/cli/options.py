"""The options and helpers the commands share: specs, data and prepared folders, device, execution."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import click

from chaosgrid.cells import GridError
from chaosgrid.plan.specs import Shard

STARTED = time.perf_counter()  # a job's phases are timed from here (interpreter start-up before it: ~0.05 s)
# The config schema, in the checkout the commands run from: it holds every setting's default.
CONFIG_SCHEMA = "workflow/schemas/config.schema.yaml"


def with_defaults(config: dict, checkout: Path | str = ".") -> dict:
    """`config` with the schema's defaults filled in, as the workflow plans it (Snakemake's `validate`)."""
    from snakemake.utils import validate

    schema = Path(checkout) / CONFIG_SCHEMA
    if not schema.exists():
        raise click.ClickException(f"{schema} not found: run this from the chaosgrid checkout")
    validate(config, str(schema), set_default=True)
    return config


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


def _prepared_files(ctx, param, value: tuple[str, ...]) -> dict[str, str] | None:
    """--prepared NAME=PATH ...: the prepared files by name (`data`, each evaluation set's), each existing."""
    files = {}
    for given in value:
        name, _, path = given.partition("=")
        if not (name and path):
            raise click.BadParameter(f"{given!r} is not NAME=PATH (data=..., contrast~2=...)")
        if not Path(path).is_file():
            raise click.BadParameter(f"{path} not found: `chaosgrid prepare` makes it (the workflow does)")
        files[name] = path
    if files and "data" not in files:
        raise click.BadParameter("give the prepared dataset too: data=PATH")
    return files or None


prepared_option = click.option(
    "--prepared",
    multiple=True,
    metavar="NAME=PATH",
    callback=_prepared_files,
    help="A prepared input (`chaosgrid prepare`), read memory-mapped instead of made here: data=PATH for the "
    "dataset, then NAME=PATH for each evaluation set (contrast~2, cifar10_1, planes: their anchors).",
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


EXIT_PREEMPTED = 75  # EX_TEMPFAIL: the shard saved its state and stopped when asked; a retry resumes


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


def device_of(name: str):
    """The torch device of a checked --device (chaosgrid.device), or a usage error naming what torch sees."""
    from chaosgrid import device

    try:
        return device.torch_device(name)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--device") from err
