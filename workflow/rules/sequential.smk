# Studies with an `until` block add seed blocks until their comparisons are decided (chaosgrid.analysis.sequential):
# after each block, one `decide` job judges every open comparison; its output says which grid points train
# the next block. A checkpoint, so Snakemake plans each block after the decision that asks for it.


checkpoint decide:
    input:
        runs=shard_files("runs", looks=True),
        predictions=shard_files("predictions", looks=True),
    output:
        "results/{study}/sequential/look~{look}.json",
    log:
        "results/{study}/logs/decide~{look}.log",
    wildcard_constraints:
        study=one_of(ADAPTIVE),
        look=r"\d+",
    conda:
        "../../envs/chaosgrid.yaml"
    params:
        axes=get_study_axes,
        until=lambda wildcards: config["studies"][wildcards.study]["until"],
    script:
        "../../scripts/decide.py"
