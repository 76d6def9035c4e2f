# Per study: its tables as report pages (results, overview, each table), registered with its figures for
# `snakemake --report results/report.html`.


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
