"""The user's own code, named in a config as "package.module:attribute" (Hydra's `_target_`, in one string).

Planning stays torch-free and imports nothing of the user's: it checks the form and finds the module's file
(`source`) by walking the import path without executing a package, so a typo is named before any job runs
and the file can be an input of the jobs that use it (editing it re-runs exactly those). A job imports it
(`load`).
"""

from __future__ import annotations

import ast
import functools
import importlib
import re
import shlex
import shutil
import string
from importlib.machinery import PathFinder
from pathlib import Path

from chaosgrid.cells import CODE

REFERENCE = re.compile(CODE)  # package.module:attribute


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
            raise PluginError(
                f"module {module!r} of {reference!r} cannot be found: no {part!r} in {where}; "
                f"install your package or add its folder to PYTHONPATH"
            )
        search = spec.submodule_search_locations
    if spec is None or spec.origin is None:
        raise PluginError(f"module {module!r} of {reference!r} has no source file")
    return Path(spec.origin)


def checked_source(reference: str, arguments: tuple[str, ...]) -> Path:
    """The file defining `reference`'s module (`source`), checked by reading it (nothing is imported): it
    defines the attribute at top level (a def, class, assignment or import) and, for a def, one callable with
    these positional `arguments`, so that a typo or a wrong signature is named at planning, not in a job.
    Where the source cannot tell (a module `__getattr__`, `import *`, a decorated function), the job finds
    out."""
    path = source(reference)
    module, _, name = reference.partition(":")
    defined = _top_level(path, path.stat().st_mtime_ns)
    if defined is None or (name not in defined and "__getattr__" in defined):
        return path
    if name not in defined:
        near = ", ".join(sorted(n for n in defined if not n.startswith("_"))[:8])
        raise PluginError(
            f"module {module!r} ({path}) defines no {name!r} at top level (a def, class, assignment "
            f"or import){'; it defines ' + near if near else ''}"
        )
    positional, required, varargs = defined[name] or ((), 0, True)
    if len(arguments) < required or (len(arguments) > len(positional) and not varargs):
        raise PluginError(
            f"{reference} takes ({', '.join(positional) or 'no arguments'}); it is called with "
            f"{len(arguments)} positional argument{'s' * (len(arguments) != 1)}: "
            f"({', '.join(arguments)})"
        )
    return path


@functools.lru_cache(maxsize=64)
def _top_level(path: Path, mtime_ns: int) -> dict[str, tuple | None] | None:
    """The names a module's source defines at top level, each with (positional parameters, how many are
    required, whether it takes *args) for an undecorated def and None otherwise; None where the source
    cannot tell (`import *`). Cached by file and modification time: planning asks once per grid point."""
    module = path.stem
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, SyntaxError, ValueError) as err:
        raise PluginError(f"module {module!r} cannot be read ({path}): {err}") from err
    defined: dict[str, tuple | None] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.decorator_list:
            positional = [a.arg for a in (*node.args.posonlyargs, *node.args.args)]
            defined[node.name] = (
                tuple(positional),
                len(positional) - len(node.args.defaults),
                node.args.vararg is not None,
            )
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if any(alias.name == "*" for alias in node.names):
                return None
            defined |= {(alias.asname or alias.name).partition(".")[0]: None for alias in node.names}
        elif isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            defined[node.name] = None
        else:  # an assignment, or an if/try/with that defines names at top level
            defined |= {
                n.id: None for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
            }
            defined |= {
                n.name: None
                for n in ast.walk(node)
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            }
    return defined


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


# what a trainer command's placeholders may name beside a run's keys
COMMAND_VALUES = (
    "data",
    "out",
    "num_classes",
)


@functools.lru_cache(maxsize=256)
def command_files(template: str, keys: frozenset[str]) -> tuple[str, ...]:
    """Check a trainer command at planning, without running it, and return the files it names (its script,
    a config it reads): the workflow makes them inputs of its shards, so editing one re-runs exactly those.
    The program must be found (on PATH, or as a file) and every placeholder must name one of `keys` (the
    run's parameters and the study's own keys) or `COMMAND_VALUES`."""
    try:
        words = shlex.split(template)
    except ValueError as err:
        raise PluginError(f"trainer command {template!r} cannot be split into words: {err}") from err
    if not words:
        raise PluginError("trainer command is empty: give the program and its arguments after 'command:'")
    known = keys | set(COMMAND_VALUES)
    for word in words:
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(word) if f is not None]
        except ValueError as err:
            raise PluginError(
                f"trainer command {template!r}: {word!r} is not a valid template ({err})"
            ) from err
        for field in fields:
            name = re.split(r"[.\[]", field, maxsplit=1)[0]
            if name not in known:
                raise PluginError(
                    f"trainer command {template!r}: unknown placeholder {{{field}}}; placeholders name "
                    f"the run's parameters, the study's own keys, or {', '.join(COMMAND_VALUES)}"
                )
    program = words[0]
    if "{" not in program and shutil.which(program) is None:
        raise PluginError(
            f"trainer command {template!r}: program {program!r} not found (neither on PATH nor as "
            f"an executable file; relative paths are from the working directory)"
        )
    named = words[1:] if shutil.which(program) and "/" not in program else words
    return tuple(word for word in named if "{" not in word and Path(word).is_file())
