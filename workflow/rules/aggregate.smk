# Per study: shard files -> runs, evals (run x eval set) and summary (grid point x eval set) tables.


rule aggregate:
    input:
        runs=shard_files("runs"),
        predictions=shard_files("predictions"),
    output:
        runs="results/{study}/tables/runs.parquet",
        evals="results/{study}/tables/evals.parquet",
        summary="results/{study}/tables/summary.parquet",
    log:
        "results/{study}/logs/aggregate.log",
    conda:
        "../../envs/chaosgrid.yaml"
    params:
        axes=lambda wildcards: study_axes(config["studies"][wildcards.study]),
    script:
        "../scripts/aggregate.py"
