# Per study with the `planes` probe set: decision-region tables and figures (Somepalli et al. 2022).


rule regions:
    input:
        runs="results/{study}/tables/runs.parquet",
        predictions=shard_files("predictions"),
    output:
        **{name: f"results/{{study}}/tables/{name}.parquet" for name in REGION_TABLES},
    log:
        "results/{study}/logs/regions.log",
    conda:
        "../../envs/chaosgrid.yaml"
    params:
        axes=lambda wildcards: study_axes(config["studies"][wildcards.study]),
    script:
        "../scripts/regions.py"


rule region_figures:
    input:
        **{name: f"results/{{study}}/tables/{name}.parquet" for name in REGION_TABLES},
    output:
        **{
            name: report(
                f"results/{{study}}/figures/{name}.png",
                caption=f"../report/{name}.rst",
                category="{study}",
                subcategory="decision regions",
            )
            for name in REGION_FIGURES
        },
    log:
        "results/{study}/logs/region_figures.log",
    conda:
        "../../envs/chaosgrid.yaml"
    params:
        axes=lambda wildcards: ",".join(study_axes(config["studies"][wildcards.study])),
    shell:
        "chaosgrid region-figures --tables results/{wildcards.study}/tables --axes={params.axes}"
        " --study {wildcards.study} --outdir results/{wildcards.study}/figures > {log:q} 2>&1"
