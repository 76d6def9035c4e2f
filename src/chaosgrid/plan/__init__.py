"""Planning: what the workflow runs, decided torch-free from the config (axes, seeds, study blocks, shard and
curve specs, every results and prepared-file path, and the checks and warnings made before any job runs).
It imports nothing from the jobs, the analyses or the command line (.importlinter)."""
