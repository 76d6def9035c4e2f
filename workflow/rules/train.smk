# One job per shard: the shard's runs train together in one process (data loaded once). A running shard
# saves its state every `save_every` minutes and when SLURM signals it (SIGTERM, SIGUSR1) to
# results/<study>/resume/<shard>.pt, outside its declared outputs (which Snakemake deletes when a job
# fails): the retry resumes from it, bit-identically; it is removed when the shard is done. `save_every`
# reaches the command through the environment (CHAOSGRID_SAVE_EVERY, declared in common.smk's `envvars`),
# not as a param: a changed param re-runs every finished shard, and how often a job saves changes no
# result. Shards of studies
# that keep weights (asked for, or started from by another study) also write them, by the second rule,
# and are evaluated on their shifted and probe sets from them by the third: a shift added to such a study
# re-runs its evaluation jobs, not its training. Shards whose runs start from another study's weights take
# that file as input, so deleting it re-runs its shard and everything that starts from it.


rule train_shard:
    input:
        unpack(get_start_weights),
        prepared=get_prepared(training=True),
        own=get_own,
    output:
        runs="results/{study}/runs/{shard}.parquet",
        predictions="results/{study}/predictions/{shard}.parquet",
        history="results/{study}/history/{shard}.parquet",
    log:
        "results/{study}/logs/{shard}.log",
    benchmark:
        "results/{study}/benchmarks/{shard}.tsv"
    wildcard_constraints:
        study=one_of([s for s in config["studies"] if s not in PLAN.weight_studies]),
    retries: config["retries"]
    conda:
        "../../envs/chaosgrid.yaml"
    threads: get_resource("threads")
    resources:
        mem_mb=get_resource("mem_mb"),
        runtime=get_resource("runtime"),
        gpu=get_resource("gpus"),
    params:
        spec=lambda wildcards: SHARDS[wildcards.study, wildcards.shard].training().to_json(),
        files=lambda wildcards, input, output: planning.shard_file_options([*input.items(), *output.items()]),
        device=config["device"],
        execution=planning.execution_flags(config["execution"]),
        prepared=get_prepared(training=True, as_options=True),
        resume="results/{study}/resume/{shard}.pt",
    shell:
        "chaosgrid train-shard --spec {params.spec:q} {params.files:q} --threads {threads}"
        " --device {params.device:q} {params.execution:q} {params.prepared:q}"
        ' --resume {params.resume:q} --save-every "$CHAOSGRID_SAVE_EVERY" > {log:q} 2>&1'


use rule train_shard as train_shard_keeping_weights with:
    output:
        runs="results/{study}/runs/{shard}.parquet",
        predictions="results/{study}/trained/{shard}.parquet",
        history="results/{study}/history/{shard}.parquet",
        weights="results/{study}/weights/{shard}.pt",
    wildcard_constraints:
        study=one_of(PLAN.weight_studies),


rule evaluate_shard:
    input:
        runs="results/{study}/runs/{shard}.parquet",
        trained="results/{study}/trained/{shard}.parquet",
        weights="results/{study}/weights/{shard}.pt",
        prepared=get_prepared(training=False),
        own=get_own,
    output:
        predictions="results/{study}/predictions/{shard}.parquet",
    log:
        "results/{study}/logs/{shard}.evaluate.log",
    wildcard_constraints:
        study=one_of(PLAN.weight_studies),
    retries: config["retries"]
    conda:
        "../../envs/chaosgrid.yaml"
    threads: get_resource("threads")
    resources:
        mem_mb=get_resource("mem_mb"),
        runtime=get_resource("runtime"),
        gpu=get_resource("gpus"),
    params:
        spec=lambda wildcards: SHARDS[wildcards.study, wildcards.shard].to_json(),
        device=config["device"],
        execution=planning.execution_flags(config["execution"]),
        prepared=get_prepared(training=False, as_options=True),
    shell:
        "chaosgrid evaluate-shard --spec {params.spec:q} --weights {input.weights:q} --runs {input.runs:q}"
        " --trained {input.trained:q} --predictions {output.predictions:q} --threads {threads}"
        " --device {params.device:q} {params.execution:q} {params.prepared:q} > {log:q} 2>&1"
