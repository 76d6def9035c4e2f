# Per study: run-to-run variance tables (calibrated chaos) from the per-example correctness of every run.


rule variance:
    input:
        runs="results/{study}/tables/runs.parquet",
        predictions=shard_files("predictions"),
    output:
        **{name: f"results/{{study}}/tables/{name}.parquet" for name in VARIANCE_TABLES},
    log:
        "results/{study}/logs/variance.log",
    conda:
        "../../envs/chaosgrid.yaml"
    params:
        axes=lambda wildcards: study_axes(config["studies"][wildcards.study]),
    script:
        "../scripts/variance.py"


rule variance_figures:
    input:
        **{name: f"results/{{study}}/tables/{name}.parquet" for name in VARIANCE_TABLES},
    output:
        **{
            name: report(
                f"results/{{study}}/figures/{name}.png",
                caption=f"../report/{name}.rst",
                category="{study}",
                subcategory="variance",
            )
            for name in VARIANCE_FIGURES
        },
    log:
        "results/{study}/logs/variance_figures.log",
    conda:
        "../../envs/chaosgrid.yaml"
    params:
        axes=lambda wildcards: ",".join(study_axes(config["studies"][wildcards.study])),
    shell:
        "chaosgrid variance-figures --tables results/{wildcards.study}/tables --axes={params.axes}"
        " --study {wildcards.study} --outdir results/{wildcards.study}/figures > {log:q} 2>&1"
