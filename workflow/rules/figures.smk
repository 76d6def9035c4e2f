# Per study: figures of the tables, registered for `snakemake --report results/report.html`.


rule figures:
    input:
        evals="results/{study}/tables/evals.parquet",
        summary="results/{study}/tables/summary.parquet",
        history="results/{study}/tables/history.parquet",
    output:
        **{
            name: report(
                f"results/{{study}}/figures/{name}.png",
                caption=f"../report/{name}.rst",
                category="{study}",
            )
            for name in STUDY_FIGURES
        },
    log:
        "results/{study}/logs/figures.log",
    conda:
        "../../envs/chaosgrid.yaml"
    params:
        axes=lambda wildcards: ",".join(study_axis_list(wildcards)),
    shell:
        "chaosgrid figures --evals {input.evals:q} --summary {input.summary:q} --history {input.history:q}"
        " --axes={params.axes}"
        " --study {wildcards.study} --outdir results/{wildcards.study}/figures > {log:q} 2>&1"


rule report_tables:
    input:
        **{t: f"results/{{study}}/tables/{t}.parquet" for t in REPORT_TABLES},
    output:
        **{
            t: report(
                f"results/{{study}}/report/{t}.html",
                caption=f"../report/table_{t}.rst",
                category="{study}",
                subcategory="tables",
            )
            for t in REPORT_TABLES
        },
    log:
        "results/{study}/logs/report_tables.log",
    conda:
        "../../envs/chaosgrid.yaml"
    params:
        names=",".join(REPORT_TABLES),
    shell:
        "chaosgrid report-tables --tables results/{wildcards.study}/tables --names {params.names}"
        " --study {wildcards.study} --outdir results/{wildcards.study}/report > {log:q} 2>&1"
