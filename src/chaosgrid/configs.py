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
                raise DuplicateKeyError(
                    f"line {key_node.start_mark.line + 1}: key {key!r} is given twice (first on "
                    f"line {seen[key]}); YAML would keep the last one silently"
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def check_no_duplicate_keys(path: Path | str) -> None:
    """Raise DuplicateKeyError naming the file, line and key of the first key repeated within a mapping."""
    try:
        yaml.load(Path(path).read_text(), Loader=_StrictLoader)
    except DuplicateKeyError as err:
        raise DuplicateKeyError(f"{path}: {err}") from err


# Names people write for a key, where spelling alone would not suggest it.
SYNONYMS = {
    "learning_rate": "lr",
    "wd": "weight_decay",
    "seed": "seeds",
    "bs": "batch_size",
    "arch": "model",
    "architecture": "model",
    "n_seeds": "seeds",
    "epoch": "epochs",
    "shift": "shifts",
}


def schema_problem(config: dict, schema_path: Path | str) -> str | None:
    """The first way `config` breaks the schema, as one line: where (studies.wd_lr.lr), what, and for an
    unknown key the closest known one; None when it validates. Snakemake's own message prints the whole
    schema of the place (434 lines for one typo'd study key), which buries the line that matters."""
    import jsonschema

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return None
    while error.parent is not None:  # inside oneOf/anyOf: the property's own error says what it is
        error = error.parent
    where = ".".join(str(p) for p in error.absolute_path) or "top level"
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        known = set(error.schema.get("properties", {}))
        unknown = [k for k in error.instance if k not in known]
        return f"config {where}: unknown key {unknown[0]!r}{_suggestion(str(unknown[0]), known)} (every key: config/README.md)"
    what = (
        f"{error.instance!r} is not valid" if error.validator in ("anyOf", "oneOf") else error.message[:160]
    )
    described = " ".join(error.schema.get("description", "").split())
    about = f" ({described[:100]}{'...' if len(described) > 100 else ''})" if described else ""
    return f"config {where}: {what}{about}; every key: config/README.md"


def _suggestion(key: str, known: set[str]) -> str:
    import difflib

    close = (
        [SYNONYMS[key]]
        if SYNONYMS.get(key) in known
        else difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    )
    return f"; did you mean {close[0]!r}?" if close else ""
