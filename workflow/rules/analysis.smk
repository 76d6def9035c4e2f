# Per study: every declared analysis (chaosgrid.plan.analyses.ANALYSES) that applies to it, as a pair of rules
# made here from the declaration: tables from the runs and predictions (and the files its `inputs` names), then
# figures for the report. The study's own figures are one of them, drawn from the aggregate's tables.


for analysis in ANALYSES.values():

    if analysis.tables:

        rule:
            name:
                analysis.name
            input:
                unpack(
                    lambda wildcards, analysis=analysis: analysis.extra_inputs(
                        wildcards.study, config["studies"], SHARDS, PLAN.curves
                    )
                ),
                runs="results/{study}/tables/runs.parquet",
                predictions=shard_files("predictions"),
            output:
                **{t: f"results/{{study}}/tables/{t}.parquet" for t in analysis.tables},
            log:
                f"results/{{study}}/logs/{analysis.name}.log",
            conda:
                "../../envs/chaosgrid.yaml"
            params:
                analysis=analysis.name,
                axes=get_study_axes,
                options=lambda wildcards, analysis=analysis: json.dumps(
                    {k: config["studies"][wildcards.study].get(k) for k in analysis.options}
                ),
            script:
                "../../scripts/analysis.py"

    rule:
        name:
            f"{analysis.name}_figures"
        input:
            **{t: f"results/{{study}}/tables/{t}.parquet" for t in (*analysis.tables, *analysis.reads)},
        output:
            **{
                f: report(
                    f"results/{{study}}/figures/{f}.png",
                    caption=f"../report/{f}.rst",
                    category="{study}",
                    subcategory=analysis.name,
                    labels={"figure": f.replace("_", " ")},
                )
                for f in analysis.figures
            },
        log:
            f"results/{{study}}/logs/{analysis.name}_figures.log",
        conda:
            "../../envs/chaosgrid.yaml"
        params:
            analysis=analysis.name,
            axes=lambda wildcards: ",".join(get_study_axes(wildcards)),
        shell:
            "chaosgrid analysis-figures --analysis {params.analysis:q} --tables results/{wildcards.study:q}/tables"
            " --axes={params.axes:q} --study {wildcards.study:q} --outdir results/{wildcards.study:q}/figures"
            " > {log:q} 2>&1"
