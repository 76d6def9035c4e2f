"""The user's own code, named in a config as "package.module:attribute" (Hydra's `_target_`, in one string).

Planning stays torch-free and imports nothing of the user's: it checks the form and finds the module's file
(`source`) by walking the import path without executing a package, so a typo is named before any job runs
and the file can be an input of the jobs that use it (editing it re-runs exactly those). A job imports it
(`load`).
"""

from __future__ import annotations

import importlib
import re
from importlib.machinery import PathFinder
from pathlib import Path

REFERENCE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")


class PluginError(ValueError):
    """A reference to the user's code is malformed, or its module cannot be found or lacks the attribute."""


def is_reference(value: object) -> bool:
    return isinstance(value, str) and REFERENCE.fullmatch(value) is not None


def source(reference: str) -> Path:
    """The file defining `reference`'s module, found on sys.path without importing anything."""
    if not is_reference(reference):
        raise PluginError(f"{reference!r} is not of the form package.module:attribute")
    module = reference.partition(":")[0]
    search, spec = None, None
    for depth, part in enumerate(module.split(".")):
        spec = PathFinder.find_spec(part, search)
        if spec is None:
            where = ".".join(module.split(".")[:depth]) or "sys.path (PYTHONPATH, or installed packages)"
            raise PluginError(f"module {module!r} of {reference!r} cannot be found: no {part!r} in {where}; "
                              f"install your package or add its folder to PYTHONPATH")  # fmt: skip
        search = spec.submodule_search_locations
    if spec is None or spec.origin is None:
        raise PluginError(f"module {module!r} of {reference!r} has no source file")
    return Path(spec.origin)


def load(reference: str):
    """Import `reference`'s module and return the attribute it names."""
    module, _, name = reference.partition(":")
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise PluginError(f"cannot load {reference!r}: {err}") from err
    if not callable(found):
        raise PluginError(f"{reference!r} is not callable")
    return found
