"""Decision planes (chaosgrid.planes) and the region statistics and figures built on them."""

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from chaosgrid import engine, grid, planes, shifts, store, train
from chaosgrid.aggregate import aggregate
from chaosgrid.analysis.regions import MAPS_PER_POINT, study_regions
from chaosgrid.cli import main
from chaosgrid.grid import check_shifts, validate_cell


def test_plane_points_lie_on_the_plane_through_three_images_of_three_classes(digits):
    trip = planes.triplets(digits.y_train)
    assert trip.shape == (planes.N_PLANES, 3)
    assert all(len(set(digits.y_train[row].tolist())) == 3 for row in trip)
    assert torch.equal(trip, planes.triplets(digits.y_train))  # fixed by the dataset alone
    points, labels = planes.plane_points(digits.x_train, digits.y_train)
    per_plane = planes.RESOLUTION**2
    assert points.shape == (planes.N_PLANES * per_plane, *digits.x_train.shape[1:]) and labels.shape == (len(points),)
    for p, row in enumerate(trip):
        a, b, c = (digits.x_train[i].flatten().double() for i in row)
        basis = torch.stack([b - a, c - a], dim=1)  # every point is a + basis @ coefficients
        offsets = points[p * per_plane : (p + 1) * per_plane].flatten(1).double() - a
        coefficients = torch.linalg.lstsq(basis, offsets.T).solution
        assert (basis @ coefficients - offsets.T).abs().max() < 1e-5
        # every point is labelled with the class of its nearest anchor, and each anchor is nearest to some point
        assert set(labels[p * per_plane : (p + 1) * per_plane].tolist()) == set(digits.y_train[row].tolist())


def test_fragmentation_counts_connected_class_regions():
    r = planes.RESOLUTION
    halves = np.zeros((r, r), dtype=np.uint8)
    halves[:, r // 2 :] = 1
    islands = halves.copy()
    islands[2, 2] = islands[5, 5] = 7  # two separate one-pixel regions of one class
    assert planes.fragmentation(np.concatenate([halves.ravel(), islands.ravel()])).tolist() == [2, 4]


def test_reproducibility_is_the_mean_pairwise_agreement():
    rng = np.random.default_rng(0)
    preds = rng.integers(0, 3, (5, 200))
    pairs = [(preds[i] == preds[j]).mean() for i in range(5) for j in range(i + 1, 5)]
    assert planes.reproducibility(preds) == pytest.approx(np.mean(pairs))
    assert planes.reproducibility(np.stack([preds[0]] * 3)) == 1.0


def test_planes_need_no_severities_and_work_on_any_dataset():
    check_shifts(("planes",), (), "digits")
    assert grid.eval_pairs(["planes", "jpeg"], [2]) == [("clean", 0), ("planes", 0), ("jpeg", 2)]


@pytest.fixture(scope="module")
def region_study(digits, tmp_path_factory):
    """Two grid points (width 2 and 8) of three seeds each, evaluated on the clean set and the planes."""
    folder = tmp_path_factory.mktemp("regions")
    sets = shifts.eval_sets(digits, grid.eval_pairs(["planes"], []))
    run_files, prediction_files, history_files = [], [], []
    for width in (2, 8):
        cells = [validate_cell({"width": width, "epochs": 2, "init_seed": s, "order_seed": s, "aug_seed": s})
                 for s in range(3)]  # fmt: skip
        results = train.train_shard(cells, digits, sets)
        key = f"width~{width}/seeds~0-2"
        run_files.append(folder / "runs" / f"{key}.parquet")
        prediction_files.append(folder / "predictions" / f"{key}.parquet")
        history_files.append(folder / "history" / f"{key}.parquet")
        store.write_table(store.history_table(results), history_files[-1])
        store.write_table(store.runs_table(results, key, store.provenance("cpu", 1, engine.Execution("loop").provenance())),
                          run_files[-1])  # fmt: skip
        store.write_table(store.predictions_table(results), prediction_files[-1])
    tables = folder / "tables"
    names = ("runs", "evals", "summary", "history")
    aggregate(run_files, prediction_files, history_files, ["width"], {t: tables / f"{t}.parquet" for t in names})
    return folder, prediction_files


def test_probe_sets_stay_out_of_accuracy_tables(region_study):
    folder, _ = region_study
    assert set(pd.read_parquet(folder / "tables/evals.parquet")["shift"]) == {"clean"}
    assert set(pd.read_parquet(folder / "tables/summary.parquet")["shift"]) == {"clean"}


def test_region_tables_and_figures(region_study):
    folder, prediction_files = region_study
    runs = pd.read_parquet(folder / "tables/runs.parquet")
    regions, maps = study_regions(runs, prediction_files, ["width"])
    assert regions["width"].tolist() == [2, 8] and (regions["n_runs"] == 3).all()
    assert regions["reproducibility"].between(0, 1).all() and (regions["fragmentation"] >= 1).all()
    expected_error = 1 - runs.groupby("width")["test_acc"].mean()
    np.testing.assert_allclose(regions["test_error"], expected_error.to_numpy())
    assert len(maps) == 2 * MAPS_PER_POINT and {len(p) for p in maps["pred"]} == {planes.RESOLUTION**2}
    tables = folder / "tables"
    for name, frame in (("regions", regions), ("region_maps", maps)):
        frame.to_parquet(tables / f"{name}.parquet")
    result = CliRunner().invoke(main, ["analysis-figures", "--analysis", "regions", "--tables", str(tables), "--axes", "width",
                                       "--outdir", str(folder / "figures")])  # fmt: skip
    assert result.exit_code == 0, result.output
    for name in ("decision_regions", "double_descent"):
        assert (folder / "figures" / f"{name}.png").stat().st_size > 10_000
