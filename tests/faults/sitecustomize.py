"""Fault injection for retry tests, outside the production code: with this folder on PYTHONPATH and
CHAOSGRID_FAIL_ONCE naming a marker file, the first `chaosgrid train-shard` process to start creates the
marker and exits 1 (as a job killed by its node would); every later one runs normally."""

import os
import sys
from pathlib import Path

_marker = os.environ.get("CHAOSGRID_FAIL_ONCE")
if _marker and "train-shard" in sys.argv[1:2] and not Path(_marker).exists():
    Path(_marker).touch()
    print(f"injected failure (CHAOSGRID_FAIL_ONCE={_marker})", file=sys.stderr)
    sys.stderr.flush()
    os._exit(1)
