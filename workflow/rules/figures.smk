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
                subcategory="figures",
                labels={"figure": name.replace("_", " ")},
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
        " --axes={params.axes:q}"
        " --study {wildcards.study:q} --outdir results/{wildcards.study:q}/figures > {log:q} 2>&1"


rule report_tables:
    input:
        **{t: f"results/{{study}}/tables/{t}.parquet" for t in REPORT_TABLES},
        figures=lambda wildcards: [
            f"results/{wildcards.study}/figures/{f}.png"
            for f in study_figures(config["studies"][wildcards.study])
        ],
    output:
        **{
            page: report(
                f"results/{{study}}/report/{page}.html",
                caption=f"../report/table_{page}.rst",
                category="{study}",
                subcategory="results" if page == "results" else "tables",
                labels={"table": page},
            )
            for page in REPORT_PAGES
        },
    log:
        "results/{study}/logs/report_tables.log",
    conda:
        "../../envs/chaosgrid.yaml"
    params:
        names=",".join(REPORT_TABLES),
        study_config=lambda wildcards: json.dumps(config["studies"][wildcards.study]),
        captions=os.path.join(workflow.basedir, "workflow", "report"),
    shell:
        "chaosgrid report-tables --tables results/{wildcards.study:q}/tables --names {params.names:q}"
        " --study {wildcards.study:q} --study-config {params.study_config:q}"
        " --figures results/{wildcards.study:q}/figures --captions {params.captions:q}"
        " --outdir results/{wildcards.study:q}/report > {log:q} 2>&1"
