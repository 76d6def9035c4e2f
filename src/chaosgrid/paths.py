"""The further files an analysis reads besides its study's runs table and predictions (`Analysis.inputs`
names one of these): planning calls them to give the analysis job its inputs, torch-free."""

from __future__ import annotations

from chaosgrid.cells import path_text
from chaosgrid.inputs import PREPARED, planes_file
from chaosgrid.studies import ensemble_studies, plane_spec, triplets_key


def ensemble_inputs(name: str, studies: dict, shards: dict, curves: dict) -> dict:
    """The ensembles analysis reads the study's weights and curve files, and for each method its `ensembles`
    block names, that study's runs table, predictions and weights files."""
    files = {
        "weights": [f"results/{name}/weights/{key}.pt" for s, key in shards if s == name],
        "curves": [f"results/{name}/curves/{key}.parquet" for s, key in curves if s == name],
    }
    for role, other in ensemble_studies(name, studies[name], studies).items():
        keys = [key for s, key in shards if s == other]
        files[f"{role}_runs"] = f"results/{other}/tables/runs.parquet"
        files[f"{role}_predictions"] = [f"results/{other}/predictions/{k}.parquet" for k in keys]
        files[f"{role}_weights"] = [f"results/{other}/weights/{k}.pt" for k in keys]
    return files


def region_inputs(name: str, studies: dict, shards: dict, curves: dict) -> dict:
    """The regions analysis reads the anchors of the study's probe planes."""
    dataset = next(s.base["dataset"] for (n, _), s in shards.items() if n == name)
    folder = f"{PREPARED}/{path_text(dataset)}"
    return {"triplets": str(planes_file(folder, triplets_key(plane_spec(studies[name].get("planes")))))}
