"""Snakemake `script:` for every analysis rule: one declared analysis of one study (no logic here)."""

import json
import sys

from chaosgrid.analysis.run import run

with open(snakemake.log[0], "w") as log:  # noqa: F821 (injected by Snakemake)
    sys.stderr = sys.stdout = log
    s = snakemake  # noqa: F821
    extra = {k: [v] if isinstance(v, str) else list(v) for k, v in s.input.items() if k not in ("runs", "predictions")}
    extra.update(json.loads(s.params.options))
    run(s.params.analysis, s.input.runs, s.input.predictions, s.params.axes, dict(s.output.items()), extra)
