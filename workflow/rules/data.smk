# Published datasets (CIFAR-10/100, CIFAR-10.1, CIFAR-10-C, SVHN, MNIST, Fashion-MNIST) are inputs of the prepare jobs that read them.
# Present under data_root, they are used as they are (`ancient`: their timestamps never re-run a job);
# missing, this rule downloads each once, checksums verified, before any job that needs it is scheduled. It
# runs on the machine Snakemake runs on (`localrule`), which on a cluster is the login node with internet.


rule download_data:
    output:
        directory(f"{PLAN.data_root}/{{folder}}"),
    log:
        "results/downloads/{folder}.log",
    wildcard_constraints:
        folder=one_of([source.folder for source in PLAN.sources.values()]),
    retries: 0  # the download retries a passing failure itself; an offline machine fails at once, saying so
    localrule: True
    conda:
        "../../envs/chaosgrid.yaml"
    params:
        name=lambda wildcards: PLAN.source_of_folder[wildcards.folder],
        files=lambda wildcards: [
            word
            for url, md5 in PLAN.sources[PLAN.source_of_folder[wildcards.folder]].files
            for word in ("--file", url, md5)
        ],
        root=lambda wildcards, output: os.path.dirname(output[0]),
    shell:
        "chaosgrid download {params.name:q} --data-root {params.root:q} {params.files:q} > {log:q} 2>&1"


# Each dataset, each shifted evaluation set a study asks for, and the anchors of its probe planes are made
# once (chaosgrid.inputs) and memory-mapped by every shard job that reads them; a new shift or severity adds
# its own job and touches nothing else.


rule prepare_dataset:
    input:
        published=lambda wildcards: get_published(dataset=get_dataset(wildcards)),
        own=lambda wildcards: own_files({"model": "", "dataset": get_dataset(wildcards)}),
    output:
        f"{PREPARED}/{{dataset}}/{DATASET_FILE}",
    log:
        f"{PREPARED}/logs/{{dataset}}.log",
    wildcard_constraints:
        dataset=one_of(PLAN.dataset_of_folder),
    conda:
        "../../envs/chaosgrid.yaml"
    resources:
        mem_mb=8000,
    params:
        dataset=get_dataset,
        root=PLAN.data_root,
    shell:
        "chaosgrid prepare --dataset {params.dataset:q} --out {output:q} --data-root {params.root:q} > {log:q} 2>&1"


rule prepare_eval_set:
    input:
        dataset=f"{PREPARED}/{{dataset}}/{DATASET_FILE}",
        published=lambda wildcards: get_published(shifts=[parse_eval_name(wildcards.eval_set)[0]]),
    output:
        f"{PREPARED}/{{dataset}}/eval/{{eval_set}}.pt",
    log:
        f"{PREPARED}/logs/{{dataset}}/{{eval_set}}.log",
    wildcard_constraints:
        dataset=one_of(PLAN.dataset_of_folder),
        eval_set=r"[a-z0-9_]+(~\d)?",
    conda:
        "../../envs/chaosgrid.yaml"
    params:
        dataset=get_dataset,
        root=PLAN.data_root,
    shell:
        "chaosgrid prepare --dataset {params.dataset:q} --eval-set {wildcards.eval_set:q} --from {input.dataset:q}"
        " --out {output:q} --data-root {params.root:q} > {log:q} 2>&1"


rule prepare_planes:
    input:
        dataset=f"{PREPARED}/{{dataset}}/{DATASET_FILE}",
    output:
        f"{PREPARED}/{{dataset}}/planes/{{key}}.pt",
    log:
        f"{PREPARED}/logs/{{dataset}}/planes-{{key}}.log",
    wildcard_constraints:
        dataset=one_of(PLAN.dataset_of_folder),
        key=r"(train|test)-(distinct|any)-\d+",
    conda:
        "../../envs/chaosgrid.yaml"
    params:
        dataset=get_dataset,
    shell:
        "chaosgrid prepare --dataset {params.dataset:q} --planes {wildcards.key:q} --from {input.dataset:q}"
        " --out {output:q} > {log:q} 2>&1"
