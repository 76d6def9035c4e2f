"""Config files as written: what YAML loading would hide before validation sees the result.

PyYAML (and so Snakemake) keeps the last of two equal keys in a mapping without a word: a study whose
`seeds: 4` is followed by a forgotten `seeds: 2` runs 2. Planning reads each config file again with a loader
that refuses a repeated key, naming the file, the line and the key.
"""

from __future__ import annotations

from pathlib import Path

import yaml


class DuplicateKeyError(ValueError):
    """A mapping in a config file names a key twice."""


class _StrictLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = key_node.value
            if key in seen:
                raise DuplicateKeyError(f"line {key_node.start_mark.line + 1}: key {key!r} is given twice (first on "
                                        f"line {seen[key]}); YAML would keep the last one silently")  # fmt: skip
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def check_no_duplicate_keys(path: Path | str) -> None:
    """Raise DuplicateKeyError naming the file, line and key of the first key repeated within a mapping."""
    try:
        yaml.load(Path(path).read_text(), Loader=_StrictLoader)
    except DuplicateKeyError as err:
        raise DuplicateKeyError(f"{path}: {err}") from err
