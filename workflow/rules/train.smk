# One job per shard: the shard's runs train together in one process (data loaded once).


rule train_shard:
    output:
        runs="results/{study}/runs/{shard}.parquet",
        predictions="results/{study}/predictions/{shard}.parquet",
    log:
        "results/{study}/logs/{shard}.log",
    benchmark:
        "results/{study}/benchmarks/{shard}.tsv"
    retries: config.get("retries", 1)
    conda:
        "../../envs/chaosgrid.yaml"
    threads: study_resource("threads")
    resources:
        mem_mb=study_resource("mem_mb"),
        runtime=study_resource("runtime"),
        gpu=study_resource("gpus"),
    params:
        spec=lambda wildcards: SHARDS[wildcards.study, wildcards.shard].to_json(),
        device=config.get("device", "auto"),
        execution=execution_flags(config.get("execution", {})),
        data_root=config.get("data_root", "data"),
    shell:
        "chaosgrid train-shard --spec {params.spec:q} --runs {output.runs:q}"
        " --predictions {output.predictions:q} --threads {threads} --device {params.device} {params.execution}"
        " --data-root {params.data_root:q} > {log:q} 2>&1"
