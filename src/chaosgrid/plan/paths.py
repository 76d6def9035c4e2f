"""Where things are: the prepared inputs' layout (a dataset and its evaluation sets, made once and mapped by
every shard job) and the further files an analysis reads besides its study's runs table and predictions
(`Analysis.inputs` names one of these). Planning gives every job its files from here, torch-free."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from chaosgrid.cells import path_text
from chaosgrid.evalsets import PLANES, eval_name, is_clean
from chaosgrid.plan.blocks import ensemble_studies, plane_spec, triplets_key

# The workflow's folder of prepared inputs, one subfolder per dataset (cells.path_text).
PREPARED = "resources/prepared"
DATASET_FILE = "data.pt"


def prepared_folder(dataset: str) -> str:
    """The folder of a dataset's prepared inputs (named by cells.path_text: the user's own, path-safe)."""
    return f"{PREPARED}/{path_text(dataset)}"


def eval_file(folder: Path | str, shift: str, severity: int) -> Path:
    """Where a dataset's prepared evaluation set `shift` at `severity` lives (0: a single-level set)."""
    return Path(folder) / "eval" / f"{eval_name(shift, severity)}.pt"


def planes_file(folder: Path | str, key: str) -> Path:
    """Where a dataset's prepared plane anchors live: (triplets, 3) indices, named by studies.triplets_key."""
    return Path(folder) / "planes" / f"{key}.pt"


def prepared_inputs(
    folder: Path | str, pairs: list[tuple[str, int]], planes_key: str = ""
) -> dict[str, Path]:
    """The prepared files a shard reads, by what they hold: `data` (the dataset), then each evaluation set of
    `pairs` by its name (the clean test set is part of the dataset; the probe planes' file holds their
    anchors, and the job makes the points)."""
    files = {"data": Path(folder) / DATASET_FILE}
    for name, severity in pairs:
        if name == PLANES:
            files[PLANES] = planes_file(folder, planes_key)
        elif not is_clean(name, severity):
            files[eval_name(name, severity)] = eval_file(folder, name, severity)
    return files


def ensemble_inputs(name: str, studies: dict, shards: Mapping, curves: dict) -> dict:
    """The ensembles analysis reads the study's weights and curve files, and for each method its `ensembles`
    block names, that study's runs table, predictions and weights files."""
    files = {
        "weights": [f"results/{name}/weights/{key}.pt" for key in shards.study(name)],
        "curves": [f"results/{name}/curves/{key}.parquet" for s, key in curves if s == name],
    }
    for role, other in ensemble_studies(name, studies[name], studies).items():
        keys = list(shards.study(other))
        files[f"{role}_runs"] = f"results/{other}/tables/runs.parquet"
        files[f"{role}_predictions"] = [f"results/{other}/predictions/{k}.parquet" for k in keys]
        files[f"{role}_weights"] = [f"results/{other}/weights/{k}.pt" for k in keys]
    return files


def region_inputs(name: str, studies: dict, shards: Mapping, curves: dict) -> dict:
    """The regions analysis reads the anchors of the study's probe planes."""
    dataset = next(iter(shards.study(name).values())).base["dataset"]
    folder = prepared_folder(dataset)
    return {"triplets": str(planes_file(folder, triplets_key(plane_spec(studies[name].get("planes")))))}
