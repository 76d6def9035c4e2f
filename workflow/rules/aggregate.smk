# Per study: shard files -> runs, evals (run x eval set), summary (grid point x eval set) and history
# (run x epoch) tables.


rule aggregate:
    input:
        runs=shard_files("runs"),
        predictions=shard_files("predictions"),
        history=shard_files("history"),
    output:
        runs="results/{study}/tables/runs.parquet",
        evals="results/{study}/tables/evals.parquet",
        summary="results/{study}/tables/summary.parquet",
        history="results/{study}/tables/history.parquet",
    log:
        "results/{study}/logs/aggregate.log",
    conda:
        "../../envs/chaosgrid.yaml"
    params:
        axes=get_study_axes,
    script:
        "../../scripts/aggregate.py"
