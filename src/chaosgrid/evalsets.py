"""Evaluation sets: their names, the clean test set, probe sets, and which shifts a dataset admits.

Every run is evaluated on the clean test set and on each shift at each severity; a probe set (points on
planes through images) is stored like an evaluation set but kept out of accuracy tables and variance
statistics. Torch-free, so planning can check a study's shifts.
"""

from __future__ import annotations

import difflib
import re

from chaosgrid.cells import SIGNAL_DATASETS, GridError

# Corruption families of chaosgrid.shifts (kept here so planning needs no torch; a test checks they agree).
CORRUPTION_NAMES = ("gaussian_noise", "gaussian_blur", "contrast", "brightness", "pixelate", "jpeg")
# The corruptions of the published CIFAR-10-C (Hendrycks & Dietterich 2019): its 15 benchmark corruptions and
# 4 held-out ones, one CIFAR-10-C/<name>.npy each; shift `cifar10c_<name>` reads one.
CIFAR10C_NAMES = (
    "brightness",
    "contrast",
    "defocus_blur",
    "elastic_transform",
    "fog",
    "frost",
    "gaussian_blur",
    "gaussian_noise",
    "glass_blur",
    "impulse_noise",
    "jpeg_compression",
    "motion_blur",
    "pixelate",
    "saturate",
    "shot_noise",
    "snow",
    "spatter",
    "speckle_noise",
    "zoom_blur",
)
# Evaluation sets that are not test sets: points on planes through training images (chaosgrid.planes).
# They are stored like any evaluation set but kept out of accuracy tables and variance statistics.
PLANES = "planes"  # the probe set of planes through triplets of images (a study's `planes` block)
PROBE_SETS = (PLANES,)
SINGLE_LEVEL_SETS = ("cifar10_1", *PROBE_SETS)  # one version each: severity 0
CLEAN = ("clean", 0)  # the unshifted test set, always evaluated first


def is_clean(shift: str, severity: int) -> bool:
    """Whether an evaluation set is the clean test set."""
    return (shift, severity) == CLEAN


def clean_rows(frame):
    """The rows of a table (with `shift` and `severity` columns) that evaluate the clean test set."""
    return frame[(frame["shift"] == CLEAN[0]) & (frame["severity"] == CLEAN[1])]


OWN_PREFIX = "own_"  # `own_<name>`: a further evaluation set of the user's dataset (x_<name>, y_<name>)
OWN_SET = re.compile(r"own_([a-z0-9_]+)")


def single_level(name: str) -> bool:
    """Whether an evaluation set has one version (severity 0): published sets, probe sets, the user's own."""
    return name in SINGLE_LEVEL_SETS or name.startswith(OWN_PREFIX)


def eval_pairs(
    shifts: list[str] | tuple[str, ...], severities: list[int] | tuple[int, ...]
) -> list[tuple[str, int]]:
    """The evaluation sets of a study: clean first, then each shift at each severity (single-level sets: one)."""
    pairs = [CLEAN]
    for name in shifts:
        pairs += [(name, 0)] if single_level(name) else [(name, s) for s in severities]
    return pairs


def evaluated_sets(predictions_path) -> set[tuple[str, int]] | None:
    """The evaluation sets a shard's predictions file holds, or None when it cannot be read (pyarrow only:
    planning calls it, for a warning; the job that reads an unreadable file names it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(predictions_path, columns=["shift", "severity"])
    except (OSError, pa.ArrowException):
        return None
    return set(zip(table["shift"].to_pylist(), table["severity"].to_pylist(), strict=True))


def eval_name(shift: str, severity: int) -> str:
    """An evaluation set's one name, everywhere (`--eval`, `--eval-set`, its prepared file, a trainer's
    sets, figure titles): clean, contrast~2, cifar10_1. `name~value`, as in shard keys."""
    return shift if severity == 0 else f"{shift}~{severity}"


def parse_eval_name(text: str) -> tuple[str, int]:
    """(shift, severity) of an evaluation set's name, or GridError."""
    shift, _, severity = text.partition("~")
    if not shift or (severity and not severity.isdigit()) or single_level(shift) == bool(severity):
        raise GridError(
            f"{text!r} is not an evaluation set's name: SHIFT~SEVERITY (contrast~2), or a one-version set's "
            f"name alone (cifar10_1, planes, own_<name>)"
        )
    return shift, int(severity or 0)


def check_shifts(shifts: tuple[str, ...], severities: tuple[int, ...], dataset: str) -> None:
    """Raise GridError naming the first unknown shift, a published set on the wrong dataset, or a bad severity."""
    own_dataset = ":" in dataset
    for name in shifts:
        if name in PROBE_SETS:
            continue
        if name.startswith(OWN_PREFIX):
            if not own_dataset or not OWN_SET.fullmatch(name):
                raise GridError(
                    f"shift {name!r} names a set of the user's own dataset (own_<name>, lower case: its "
                    f"arrays x_<name> and y_<name>), but dataset is {dataset!r}"
                )
            continue
        if dataset in SIGNAL_DATASETS:
            raise GridError(
                f"shift {name!r} is an image corruption, but dataset {dataset!r} holds 1-D signals"
            )
        if name == "cifar10_1" or name.startswith("cifar10c_"):
            if dataset != "cifar10":
                raise GridError(f"shift {name!r} is a published CIFAR-10 set, but dataset is {dataset!r}")
            corruption = name.removeprefix("cifar10c_")
            if name != "cifar10_1" and corruption not in CIFAR10C_NAMES:
                close = difflib.get_close_matches(corruption, CIFAR10C_NAMES, n=1)
                raise GridError(
                    f"shift {name!r}: CIFAR-10-C has no corruption {corruption!r}"
                    + (f"; did you mean 'cifar10c_{close[0]}'?" if close else "")
                    + f" (it has {', '.join(CIFAR10C_NAMES)})"
                )
        elif name not in CORRUPTION_NAMES:
            known = ", ".join(CORRUPTION_NAMES)
            raise GridError(
                f"unknown shift {name!r}; choose from {known}, cifar10_1, cifar10c_<corruption>, planes, "
                f"or own_<name> (a set of your own dataset)"
            )
    for severity in severities:
        if not 1 <= severity <= 5:
            raise GridError(f"severity must be 1..5, got {severity!r}")
    if any(not single_level(name) for name in shifts) and not severities:
        raise GridError("shifts are listed but 'severities' is empty")
