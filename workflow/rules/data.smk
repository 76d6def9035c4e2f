# Published datasets (CIFAR-10, CIFAR-10.1, CIFAR-10-C) are inputs of the shards that read them. Present
# under data_root, they are used as they are (`ancient`: their timestamps never re-run a shard); missing,
# this rule downloads each once, checksums verified, before any shard that needs it is scheduled. It runs
# on the machine Snakemake runs on (`localrule`), which on a cluster is the login node with internet.


rule download_data:
    output:
        directory(f"{DATA_ROOT}/{{folder}}"),
    log:
        "results/downloads/{folder}.log",
    wildcard_constraints:
        folder=one_of([re.escape(source.folder) for source in DATA_SOURCES.values()]),
    retries: 2
    localrule: True
    conda:
        "../../envs/chaosgrid.yaml"
    params:
        name=lambda wildcards: SOURCE_OF_FOLDER[wildcards.folder],
        files=lambda wildcards: " ".join(
            f"--file {shlex.quote(url)} {md5}"
            for url, md5 in DATA_SOURCES[SOURCE_OF_FOLDER[wildcards.folder]].files
        ),
        root=lambda wildcards, output: os.path.dirname(output[0]),
    shell:
        "chaosgrid download {params.name} --data-root {params.root:q} {params.files} > {log:q} 2>&1"
