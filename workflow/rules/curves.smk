# Mode-connecting curves (study 3): one job per pair of runs a study's `curves` block joins, reading the two
# runs' weights files, so deleting an endpoint's file re-runs its shard and every curve that uses it.


rule train_curves:
    input:
        unpack(get_curve_inputs),
    output:
        "results/{study}/curves/{pair}.parquet",
    log:
        "results/{study}/logs/curves/{pair}.log",
    benchmark:
        "results/{study}/benchmarks/curves/{pair}.tsv"
    retries: config["retries"]
    conda:
        "../../envs/chaosgrid.yaml"
    threads: get_resource("threads")
    resources:
        mem_mb=get_resource("mem_mb"),
        runtime=get_resource("runtime"),
        gpu=get_resource("gpus"),
    params:
        spec=lambda wildcards: PLAN.curves[wildcards.study, wildcards.pair].to_json(),
        prepared=lambda wildcards, input: planning.prepared_options({"data": input.prepared}),
        device=config["device"],
    shell:
        "chaosgrid train-curves --spec {params.spec:q} --start {input.start:q} --end {input.end:q}"
        " --out {output:q} --threads {threads} --device {params.device:q} {params.prepared:q}"
        " > {log:q} 2>&1"
