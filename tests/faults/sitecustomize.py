"""Fault injection for retry tests, outside the production code, with this folder on PYTHONPATH:
- CHAOSGRID_FAIL_ONCE naming a marker file: the first `chaosgrid train-shard` process to start creates the
  marker and exits 1 (as a job killed by its node would); every later one runs normally;
- CHAOSGRID_STOP_AFTER_SAVE naming a marker file: the first `chaosgrid train-shard` process to save its
  state (results/*/resume/) creates the marker and gets SIGTERM (as SLURM sends at a time limit)."""

import os
import sys
from pathlib import Path

_marker = os.environ.get("CHAOSGRID_FAIL_ONCE")
if _marker and "train-shard" in sys.argv[1:2] and not Path(_marker).exists():
    Path(_marker).touch()
    print(f"injected failure (CHAOSGRID_FAIL_ONCE={_marker})", file=sys.stderr)
    sys.stderr.flush()
    os._exit(1)

_stop = os.environ.get("CHAOSGRID_STOP_AFTER_SAVE")
if _stop and "train-shard" in sys.argv[1:2] and not Path(_stop).exists():
    import signal
    import threading
    import time

    def _stop_after_a_save() -> None:
        while not any(Path("results").glob("*/resume/**/*.pt")):
            time.sleep(0.01)
        Path(_stop).touch()
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=_stop_after_a_save, daemon=True).start()
