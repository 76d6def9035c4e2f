"""Snakemake `script:` for the `decide` checkpoint: one look of a study that adds seeds until decided."""

import json
import sys
from pathlib import Path

from chaosgrid.analysis.sequential import decide
from chaosgrid.store import write_atomically

with open(snakemake.log[0], "w") as log:  # noqa: F821 (injected by Snakemake)
    sys.stderr = sys.stdout = log
    s = snakemake  # noqa: F821
    decision = decide(list(s.input.runs), list(s.input.predictions), s.params.axes, s.params.until, int(s.wildcards.look))
    for row in decision["looks"]:
        print(f"look {row['look']}: {row['comparison']}: {row['status']} ({row['verdict']}), A - B "
              f"{100 * row['diff']:+.2f} [{100 * row['lo']:+.2f}, {100 * row['hi']:+.2f}] points")
    print(f"next block for {len(decision['continue'])} grid point(s)")
    write_atomically(s.output[0], lambda tmp: Path(tmp).write_text(json.dumps(decision, indent=1)))
