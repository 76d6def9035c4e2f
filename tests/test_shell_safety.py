"""No value a user controls reaches a shell unquoted: every interpolation in every rule's `shell:` is quoted
(Snakemake's `:q`), but for the job's thread count, which Snakemake itself sets."""

from __future__ import annotations

import re
import string
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RULE_FILES = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
UNQUOTED_ALLOWED = {"threads"}  # an int Snakemake resolves; never text from a config or a path


def shell_commands(path: Path) -> list[tuple[int, str]]:
    """(line, command) of each `shell:` directive in a rule file: the string literals that follow it."""
    lines = path.read_text().splitlines()
    found = []
    for i, line in enumerate(lines):
        if not re.match(r"\s*shell:\s*(#.*)?$", line):
            continue
        parts = []
        for later in lines[i + 1 :]:
            literal = re.match(r'\s*(f?)"((?:[^"\\]|\\.)*)"\s*(#.*)?$', later)
            if not literal:
                break
            assert not literal.group(1), f"{path.name}:{i + 1}: an f-string in shell: pastes values unquoted"
            parts.append(literal.group(2))
        found.append((i + 1, "".join(parts)))
    return found


def test_every_rule_file_is_read():
    commands = [c for path in RULE_FILES for c in shell_commands(path)]
    assert len(commands) >= 9 and all(command.startswith("chaosgrid ") for _, command in commands)


def test_every_interpolation_in_a_shell_command_is_quoted():
    unquoted = []
    for path in RULE_FILES:
        assert "shell(" not in path.read_text(), f"{path.name}: shell() in a run: block escapes this check"
        for line, command in shell_commands(path):
            for _, field, spec, _ in string.Formatter().parse(command):
                if field is not None and spec != "q" and field not in UNQUOTED_ALLOWED:
                    unquoted.append(f"{path.name}:{line}: {{{field}}}")
    assert not unquoted, (
        "interpolated into a shell without :q (user input reaches the shell raw):\n" + "\n".join(unquoted)
    )


def test_the_check_catches_an_unquoted_field(tmp_path):
    rule = tmp_path / "bad.smk"
    rule.write_text(
        'rule x:\n    shell:\n        "chaosgrid train-shard {params.files}"\n        " > {log:q}"\n'
    )
    fields = [
        f for _, c in shell_commands(rule) for _, f, s, _ in string.Formatter().parse(c) if f and s != "q"
    ]
    assert fields == ["params.files"]


HOSTILE = ["$(touch made_by_dollar)", "`touch made_by_backtick`", "x; touch made_by_semicolon",
           "it's \"quoted\"", "a value with spaces"]  # fmt: skip


def test_a_study_with_hostile_values_and_file_names_runs_nothing_and_keeps_them_verbatim(tmp_path):
    """A real study through the workflow: axis values and the dataset's file name hold `$(...)`, backticks,
    `;`, quotes and spaces. No command runs, and the trainer receives every value as it was written."""
    import json
    import sys

    import numpy as np
    import pandas as pd
    from workflow_helpers import snakemake, write_config

    rng = np.random.default_rng(0)
    npz = tmp_path / "d $(touch made_by_file) ;'`x`.npz"
    np.savez(npz, x_train=rng.normal(size=(60, 1, 4, 4)).astype("float32"), y_train=np.arange(60) % 3,
             x_test=rng.normal(size=(30, 1, 4, 4)).astype("float32"), y_test=np.arange(30) % 3)  # fmt: skip
    script = tmp_path / "trainer.py"
    script.write_text(
        "import json, sys, numpy as np\n"
        "data, out, tag = sys.argv[1:]\n"
        f"with open({str(tmp_path / 'tags.jsonl')!r}, 'a') as f:\n"
        "    f.write(json.dumps(tag) + '\\n')\n"
        "with np.load(data) as d:\n"
        "    np.savez(out, **{'logits.clean': np.eye(3)[d['y.clean']]})\n"
    )  # fmt: skip
    config = write_config(
        tmp_path,
        edge={
            "dataset": {"npz": npz.name},
            "seeds": 2,
            "tag": HOSTILE,
            "trainer": f"command:{sys.executable} {script} {{data}} {{out}} {{tag}}",
        },
    )
    snakemake(tmp_path, config)
    made = sorted(p.name for p in tmp_path.rglob("made_by_*")) + sorted(
        p.name for p in REPO.glob("made_by_*")
    )
    assert made == []
    seen = [json.loads(line) for line in (tmp_path / "tags.jsonl").read_text().splitlines()]
    assert sorted(seen) == sorted(HOSTILE * 2)
    runs = pd.read_parquet(tmp_path / "results/edge/tables/runs.parquet")
    assert sorted(runs["tag"]) == sorted(HOSTILE * 2) and (runs["test_acc"] == 1.0).all()
