"""Decision planes (chaosgrid.planes) and the region statistics and figures built on them."""

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from chaosgrid import engine, evalsets, inputs, planes, shifts, store, train
from chaosgrid.aggregate import aggregate
from chaosgrid.analysis.regions import MAPS_PER_POINT, study_regions
from chaosgrid.cells import validate_cell
from chaosgrid.cli import main
from chaosgrid.evalsets import check_shifts
from chaosgrid.plan.blocks import PAPER_PLANES, plane_spec

PAPER = plane_spec({**PAPER_PLANES, "triplets": 20, "resolution": 12})


def test_triplets_are_fixed_by_the_dataset_and_the_spec(digits):
    distinct = planes.anchors(digits, PAPER)
    assert distinct.shape == (20, 3) and torch.equal(distinct, planes.anchors(digits, PAPER))
    assert all(len(set(digits.y_test[row].tolist())) == 3 for row in distinct)  # test images, three classes
    default = planes.anchors(digits, plane_spec(None))  # the first planes: 8 training triplets
    assert default.shape == (8, 3) and all(len(set(digits.y_train[row].tolist())) == 3 for row in default)
    anyone = planes.anchors(digits, plane_spec({"classes": "any", "triplets": 200}))
    assert any(len(set(digits.y_train[row].tolist())) < 3 for row in anyone)  # any classes: some repeat one
    assert all(len(set(row.tolist())) == 3 for row in anyone)  # but never the same image twice


def test_plane_points_lie_on_the_plane_through_their_anchors(digits):
    trip = planes.anchors(digits, PAPER)
    points, labels = planes.probe_set(digits, PAPER, trip)
    per_plane = 12 * 12
    assert len(points) == 20 * per_plane and points.shape == (20 * per_plane, *digits.x_test.shape[1:])
    every = points.materialize()
    assert torch.equal(torch.cat(list(points.split(100))), every)  # made chunk by chunk, the same images
    x = digits.normalize(digits.x_test)  # the planes are built in normalised input space, as dbViz's
    for p, row in enumerate(trip[:5]):
        a, b, c = (x[i].flatten().double() for i in row)
        basis = torch.stack([b - a, c - a], dim=1)  # every point is a + basis @ coefficients
        offsets = every[p * per_plane : (p + 1) * per_plane].flatten(1).double() - a
        coefficients = torch.linalg.lstsq(basis, offsets.T).solution
        assert (basis @ coefficients - offsets.T).abs().max() < 1e-4
        # the grid's corners lie outside the triangle by the margin; each anchor is nearest to some point
        assert set(labels[p * per_plane : (p + 1) * per_plane].tolist()) == set(digits.y_test[row].tolist())


def test_fragmentation_counts_connected_class_regions():
    r = 32
    halves = np.zeros((r, r), dtype=np.uint8)
    halves[:, r // 2 :] = 1
    islands = halves.copy()
    islands[2, 2] = islands[5, 5] = 7  # two separate one-pixel regions of one class
    for connectivity in (4, 8):
        assert planes.fragmentation(
            np.concatenate([halves.ravel(), islands.ravel()]), r, connectivity
        ).tolist() == [2, 4]


def test_eight_connectivity_joins_regions_that_touch_at_corners():
    """dbViz counts with skimage's connectivity=2: diagonal neighbours are one region."""
    checkerboard = np.indices((6, 6)).sum(0) % 2  # 36 cells of two classes, touching only at corners
    assert planes.fragmentation(checkerboard.ravel(), 6, connectivity=4).tolist() == [36]
    assert planes.fragmentation(checkerboard.ravel(), 6, connectivity=8).tolist() == [2]
    diagonal = np.eye(6, dtype=np.uint8)  # a diagonal line of class 1 splits class 0 in two, edge-wise only
    assert planes.fragmentation(diagonal.ravel(), 6, connectivity=4).tolist() == [6 + 2]
    assert planes.fragmentation(diagonal.ravel(), 6, connectivity=8).tolist() == [1 + 1]


def test_reproducibility_is_the_mean_pairwise_agreement():
    rng = np.random.default_rng(0)
    preds = rng.integers(0, 3, (5, 200))
    pairs = [(preds[i] == preds[j]).mean() for i in range(5) for j in range(i + 1, 5)]
    assert planes.reproducibility(preds) == pytest.approx(np.mean(pairs))
    assert planes.reproducibility(np.stack([preds[0]] * 3)) == 1.0
    cross = [(preds[i] == preds[j]).mean() for i in range(2) for j in range(2, 5)]
    assert planes.agreement(preds[:2], preds[2:]) == pytest.approx(np.mean(cross))


def test_planes_need_no_severities_and_work_on_any_dataset():
    check_shifts(("planes",), (), "digits")
    assert evalsets.eval_pairs(["planes", "jpeg"], [2]) == [("clean", 0), ("planes", 0), ("jpeg", 2)]


@pytest.fixture(scope="module")
def region_study(digits, tmp_path_factory):
    """Two grid points (width 2 and 8) of three seeds each, evaluated on the clean set and the paper's planes
    (fewer and coarser), with checkpoints at epochs 1 and 2."""
    folder = tmp_path_factory.mktemp("regions")
    inputs.save_triplets(planes.anchors(digits, PAPER), folder / "triplets.pt")
    sets = shifts.eval_sets(digits, evalsets.eval_pairs(["planes"], []), planes=PAPER)
    run_files, prediction_files, history_files = [], [], []
    for width in (2, 8):
        cells = [validate_cell({"width": width, "epochs": 2, "init_seed": s, "order_seed": s, "aug_seed": s})
                 for s in range(3)]  # fmt: skip
        results = train.train_shard(cells, digits, sets, checkpoints="every:1")
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
    aggregate(
        run_files, prediction_files, history_files, ["width"], {t: tables / f"{t}.parquet" for t in names}
    )
    return folder, prediction_files


def test_probe_sets_stay_out_of_accuracy_tables(region_study):
    folder, _ = region_study
    assert set(pd.read_parquet(folder / "tables/evals.parquet")["shift"]) == {"clean"}
    assert set(pd.read_parquet(folder / "tables/summary.parquet")["shift"]) == {"clean"}


def test_region_tables_and_figures(region_study):
    folder, prediction_files = region_study
    runs = pd.read_parquet(folder / "tables/runs.parquet")
    regions, maps, matrix, triplets = study_regions(
        runs, prediction_files, ["width"], [folder / "triplets.pt"], PAPER
    )
    assert (
        regions["width"].tolist() == [2, 8]
        and (regions["n_runs"] == 3).all()
        and (regions["connectivity"] == 8).all()
    )
    assert regions["reproducibility"].between(0, 1).all() and (regions["fragmentation"] >= 1).all()
    expected_error = 1 - runs.groupby("width")["test_acc"].mean()
    np.testing.assert_allclose(regions["test_error"], expected_error.to_numpy())
    assert len(maps) == 2 * MAPS_PER_POINT and {len(p) for p in maps["pred"]} == {12 * 12}
    diagonal = matrix[matrix["width_a"] == matrix["width_b"]].set_index("width_a")["agreement"]
    np.testing.assert_allclose(diagonal.loc[[2, 8]], regions["reproducibility"])
    assert len(matrix) == 4 and triplets[["anchor_0", "anchor_1", "anchor_2"]].shape == (20, 3)
    first = pd.read_parquet(prediction_files[0]).query("shift == 'planes' and final")  # width 2, seeds 0..2
    pair = (np.stack(first["pred"].iloc[0]) == np.stack(first["pred"].iloc[1])).mean()
    assert regions["reproducibility_pair"].iloc[0] == pytest.approx(
        pair
    )  # the paper's one pair: seeds 0 and 1
    # 4-connectivity counts at least as many regions as 8; an earlier checkpoint has other planes
    four, *_ = study_regions(
        runs, prediction_files, ["width"], [folder / "triplets.pt"], {**PAPER, "connectivity": 4}
    )
    assert (four["fragmentation"] >= regions["fragmentation"]).all()
    earlier, *_ = study_regions(
        runs, prediction_files, ["width"], [folder / "triplets.pt"], {**PAPER, "epoch": 1}
    )
    assert not np.allclose(
        earlier["fragmentation"], regions["fragmentation"]
    )  # the epoch-1 checkpoint's planes
    tables = folder / "tables"
    for name, frame in (("regions", regions), ("region_maps", maps), ("region_agreement", matrix),
                        ("triplets", triplets)):  # fmt: skip
        frame.to_parquet(tables / f"{name}.parquet")
    result = CliRunner().invoke(main, ["analysis-figures", "--analysis", "regions", "--tables", str(tables), "--axes", "width",
                                       "--outdir", str(folder / "figures")])  # fmt: skip
    assert result.exit_code == 0, result.output
    for name in ("decision_regions", "double_descent", "region_agreement", "region_bars"):
        assert (folder / "figures" / f"{name}.png").stat().st_size > 10_000
