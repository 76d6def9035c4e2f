"""The user's own code and data a cell names, found and checked at planning without importing or running
anything (docs/your-own-experiments.md): the workflow makes these files inputs of the shards that use
them."""

from __future__ import annotations

import zipfile
from pathlib import Path

from chaosgrid import plugins
from chaosgrid.cells import (
    SEED_KEYS,
    GridError,
)
from chaosgrid.evalsets import OWN_PREFIX

NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")


# The positional arguments each kind of the user's own code is called with (docs/your-own-experiments.md).
CALLED_WITH = {"model": ("in_shape", "num_classes", "width"), "dataset": (), "trainer": ("params", "data")}


def own_files(cell: dict, shifts: tuple[str, ...] = ()) -> list[str]:
    """The files of the user's own code and data that a cell uses (a model or dataset named
    "package.module:function", a dataset "npz:<path>", holding the `own_<set>` evaluation sets of `shifts`,
    the files a trainer command names), checked without importing or running anything: GridError names the parameter and the file. The workflow makes them
    inputs of the shards that use them."""
    files = []
    for key in ("model", "dataset", "trainer"):
        value = cell.get(key, "")
        if value.startswith("npz:"):
            path = Path(value.removeprefix("npz:"))
            if not path.is_file():
                raise GridError(
                    f"parameter {key!r}: no file {path} (relative paths are from the working directory)"
                )
            try:
                with zipfile.ZipFile(path) as archive:
                    members = {Path(m).stem for m in archive.namelist()}
            except zipfile.BadZipFile as err:
                raise GridError(f"parameter {key!r}: {path} is not an .npz file ({err})") from err
            own_sets = [
                f"{axis}_{s.removeprefix(OWN_PREFIX)}"
                for s in shifts
                if s.startswith(OWN_PREFIX)
                for axis in "xy"
            ]
            if missing := [a for a in (*NPZ_ARRAYS, *own_sets) if a not in members]:
                raise GridError(
                    f"parameter {key!r}: {path} has no array {missing[0]!r}; it needs "
                    f"{', '.join((*NPZ_ARRAYS, *own_sets))}"
                )
            files.append(str(path))
        elif plugins.is_reference(value):
            try:
                files.append(str(plugins.checked_source(value, CALLED_WITH[key])))
            except plugins.PluginError as err:
                raise GridError(f"parameter {key!r}: {err}") from err
        elif key == "trainer" and value.startswith("command:"):
            try:
                files += plugins.command_files(
                    value.removeprefix("command:"), frozenset(cell) | set(SEED_KEYS)
                )
            except plugins.PluginError as err:
                raise GridError(f"parameter {key!r}: {err}") from err
    return files
