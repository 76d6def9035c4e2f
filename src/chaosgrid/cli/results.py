"""Results: figures and report pages of a study's tables, its status, an export, a comparison."""

from __future__ import annotations

import json
from pathlib import Path

import click

from chaosgrid.cells import SEED_KEYS
from chaosgrid.cli.options import (
    _parse_point,
    _study_folder,
    with_defaults,
)
from chaosgrid.evalsets import eval_name


@click.command("analysis-figures")
@click.option(
    "--analysis", "name", required=True, help="A declared analysis (chaosgrid.plan.analyses.ANALYSES)."
)
@click.option(
    "--tables",
    "folder",
    type=click.Path(exists=True, file_okay=False),
    required=True,
    help="A study's tables folder, holding the analysis's parquet tables.",
)
@click.option("--axes", default="", help="Comma-separated axes of the study, in grid order.")
@click.option("--study", default="study", help="Study name for titles.")
@click.option("--outdir", type=click.Path(file_okay=False), required=True, help="Folder for the PNGs.")
def analysis_figures(name, folder, axes, study, outdir) -> None:
    """Draw the figures of one analysis of a study (variance, regions, ...) from its tables."""
    import pandas as pd

    from chaosgrid.plan.analyses import ANALYSES

    if name not in ANALYSES:
        raise click.BadParameter(
            f"unknown analysis {name!r}; choose from {', '.join(ANALYSES)}", param_hint="--analysis"
        )
    analysis = ANALYSES[name]
    names = (*analysis.tables, *analysis.reads)
    missing = [t for t in names if not (Path(folder) / f"{t}.parquet").exists()]
    if missing:
        raise click.BadParameter(f"{folder} has no {missing[0]}.parquet", param_hint="--tables")
    tables = {t: pd.read_parquet(Path(folder) / f"{t}.parquet") for t in names}
    drawn = analysis.function("draw")(tables, [a for a in axes.split(",") if a], study, Path(outdir))
    click.echo(f"wrote {drawn} to {outdir}")


@click.command("report-tables")
@click.option(
    "--tables",
    "folder",
    type=click.Path(exists=True, file_okay=False),
    required=True,
    help="A study's tables folder.",
)
@click.option("--names", required=True, help="Comma-separated tables to render, e.g. summary,variance.")
@click.option("--study", default="study", help="Study name for titles.")
@click.option(
    "--study-config", help="The study's config block as JSON: also write overview.html (what it runs)."
)
@click.option("--outdir", type=click.Path(file_okay=False), required=True, help="Folder for the HTML pages.")
@click.option(
    "--figures",
    type=click.Path(exists=True, file_okay=False),
    help="The study's figures folder: with --study-config, also write results.html (its question, "
    "headline numbers, and every figure with its caption).",
)
@click.option(
    "--captions",
    type=click.Path(exists=True, file_okay=False),
    help="Folder of the figures' report captions (workflow/report/<figure>.rst).",
)
def report_tables(folder, names, study, study_config, outdir, figures, captions) -> None:
    """Render a study's tables as HTML pages for the Snakemake report (the parquet files stay the data), its
    overview, and its results page."""
    import pandas as pd

    from chaosgrid import report_tables as pages
    from chaosgrid.plan.analyses import study_figures
    from chaosgrid.plan.blocks import study_axes

    wanted = [n for n in names.split(",") if n]
    missing = [n for n in wanted if not (Path(folder) / f"{n}.parquet").exists()]
    if missing:
        raise click.BadParameter(f"{folder} has no {missing[0]}.parquet", param_hint="--names")
    tables = {name: pd.read_parquet(Path(folder) / f"{name}.parquet") for name in wanted}
    for name, frame in tables.items():
        shown = pages.narrow_comparisons(frame) if name == "comparisons" else frame
        pages.html_table(shown, f"{study}: {name}", Path(outdir) / f"{name}.html")
    written = len(wanted)
    if study_config:
        declared = json.loads(study_config)
        runs = Path(folder) / "runs.parquet"  # written with the summary: the shards a grown study kept
        finished = (
            pd.read_parquet(runs, columns=["shard"])["shard"].unique().tolist() if runs.exists() else []
        )
        pages.html_table(
            pages.study_overview(study, declared, finished),
            f"{study}: what it runs",
            Path(outdir) / "overview.html",
            wrap=True,
        )
        written += 1
        if figures and {"summary", "variance", "comparisons", "churn"} <= set(tables):
            axes = list(study_axes(declared))
            shown = [
                (
                    f,
                    Path(figures) / f"{f}.png",
                    pages.caption_html((Path(captions) / f"{f}.rst").read_text(), study) if captions else "",
                )
                for f in study_figures(declared)
            ]
            lines = pages.headline(
                *(tables[t] for t in ("summary", "variance", "comparisons", "churn")), axes
            )
            pages.results_page(
                study, pages.question_of(declared, axes), lines, shown, Path(outdir) / "results.html"
            )
            written += 1
    click.echo(f"wrote {written} pages to {outdir}")


@click.command("status")
@click.option(
    "--results",
    type=click.Path(file_okay=False),
    default="results",
    show_default=True,
    help="The workflow's results folder.",
)
@click.option(
    "--configfile",
    type=click.Path(dir_okay=False, exists=True),
    help="The config the workflow runs: its studies' shards and runs done of those planned.",
)
def status_command(results, configfile) -> None:
    """Where the workflow stands: per study, shards and runs done (of those planned, with --configfile); then
    every shard whose tables do not exist yet with the last line of its log, which a running shard updates at
    least once a minute, and FAILED where the log ends in an error. Reads the results folder (and the config):
    run it beside a running `snakemake`, or on a cluster's login node."""
    import yaml

    from chaosgrid.plan.workflow import Plan, PlanError
    from chaosgrid.status import status

    plan = None
    if configfile:
        config = with_defaults(yaml.safe_load(Path(configfile).read_text()))
        try:
            plan = Plan.of(config, [configfile], results)
        except PlanError as err:
            raise click.ClickException(str(err)) from err
    click.echo("\n".join(status(Path(results), plan)))


@click.command("export")
@click.option("--study", required=True, help="A study whose tables exist (results/<study>/tables/).")
@click.option(
    "--table", "tables", multiple=True, metavar="NAME", help="A table to export (repeat; default: all)."
)
@click.option(
    "--format",
    "output",
    type=click.Choice(["csv", "json"]),
    default="csv",
    show_default=True,
    help="csv: one header row; json: a list of records.",
)
@click.option(
    "--results",
    default="results",
    show_default=True,
    help="Folder holding <study>/ (the workflow's results/).",
)
@click.option(
    "--out", type=click.Path(file_okay=False), help="Folder to write to [default: results/<study>/export]."
)
def export_command(study, tables, output, results, out) -> None:
    """Write a study's tables (results/<study>/tables/*.parquet) as CSV or JSON, for tools that do not read
    parquet. Each file is written whole or not at all."""
    import pandas as pd

    from chaosgrid.store import write_atomically

    folder = _study_folder(results, study)
    found = {p.stem: p for p in sorted((folder / "tables").glob("*.parquet"))}
    if unknown := [t for t in tables if t not in found]:
        raise click.BadParameter(
            f"{study} has no table {unknown[0]!r}; its tables: {', '.join(found)}", param_hint="--table"
        )
    target = Path(out) if out else folder / "export"
    for name in tables or found:
        frame = pd.read_parquet(found[name])
        path = target / f"{name}.{output}"
        if output == "csv":
            write_atomically(path, lambda tmp, frame=frame: frame.to_csv(tmp, index=False))
        else:
            write_atomically(path, lambda tmp, frame=frame: frame.to_json(tmp, orient="records", indent=1))
        click.echo(f"{path}: {len(frame)} rows")


@click.command("compare")
@click.option(
    "--study", required=True, help="A study whose tables exist (results/<study>/tables/runs.parquet)."
)
@click.option(
    "--axis",
    help="Compare neighbouring values along this axis: pooled over the other axes (a main "
    "effect), then at each of their values.",
)
@click.option(
    "--a",
    "a_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Grid point A (repeat for each axis; name fewer axes to pool over the others).",
)
@click.option(
    "--b", "b_pairs", multiple=True, metavar="KEY=VALUE", help="Grid point B, naming the same axes as A."
)
@click.option(
    "--eval",
    "eval_set",
    default="clean",
    show_default=True,
    metavar="SET",
    help="The evaluation set: clean, a shift at a severity (contrast~2), or a one-version set (cifar10_1).",
)
@click.option(
    "--level",
    type=click.FloatRange(0.5, 0.999),
    default=0.95,
    show_default=True,
    help="Confidence level of the intervals (the verdicts' test is at 1 - level).",
)
@click.option(
    "--results",
    default="results",
    show_default=True,
    help="Folder holding <study>/ (the workflow's results/).",
)
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "json", "csv"]),
    default="text",
    show_default=True,
    help="text for reading; json or csv (one row per comparison, fractions, not points) for scripts.",
)
def compare_command(study, axis, a_pairs, b_pairs, eval_set, level, results, output) -> None:
    """Is the difference between grid points real, and how many seeds would show it?

    Splits the uncertainty of a difference in mean accuracy into run-to-run variation (per-example coin
    flips and distribution-wise spread) and the test-set draw, and answers two questions: is A better on
    this test set, and on the distribution? Naming fewer axes in --a/--b than the study has pools over the
    others (a main effect, with a line on whether the effect differs between them). Several comparisons get
    Holm-adjusted verdicts beside their own. Then: runs per arm to detect 0.1-1 point differences. Reads
    results/<study>/tables/runs.parquet and the study's predictions files; the words are defined in
    docs/statistics.md.
    """
    import pandas as pd

    from chaosgrid.analysis import compare as c
    from chaosgrid.analysis import compare_text
    from chaosgrid.store import parameter_columns

    if bool(axis) == bool(a_pairs or b_pairs):
        raise click.UsageError("give either --axis NAME or both --a KEY=VALUE ... and --b KEY=VALUE ...")
    folder = _study_folder(results, study)
    runs = pd.read_parquet(folder / "tables" / "runs.parquet")
    axes = [k for k in parameter_columns(list(runs.columns)) if k not in SEED_KEYS and runs[k].nunique() > 1]
    if "variant" in axes:  # a variant's own settings are not axes of their own
        axes = [a for a in axes if a == "variant" or runs.groupby("variant")[a].nunique().max() > 1]
    sets = c.eval_points(runs, sorted(str(f) for f in (folder / "predictions").rglob("*.parquet")), axes)
    names = {eval_name(*key): key for key in sets}
    if eval_set not in names:
        raise click.BadParameter(
            f"{study} has no evaluation set {eval_set!r}; its sets: {', '.join(names)}", param_hint="--eval"
        )
    points, orders = sets[names[eval_set]], c.value_orders(runs, axes)
    try:
        if axis:
            if axis not in axes:
                raise ValueError(f"--axis: {axis!r} is not an axis of {study}; its axes: {', '.join(axes)}")
            rows = [r for r in c.neighbours(points, axes, orders, level) if r["axis"] == axis]
        else:
            a, b = (
                c.chosen_values(_parse_point(pairs, option), axes, orders, option)
                for option, pairs in (("--a", a_pairs), ("--b", b_pairs))
            )
            rows = c.between(points, axes, a, b, level)
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    rows = c.holm(rows, level)
    if output != "text":
        table = pd.DataFrame([{"eval": eval_set, **r} for r in rows])
        click.echo(
            table.to_json(orient="records", indent=1)
            if output == "json"
            else table.to_csv(index=False).rstrip()
        )
        return
    click.echo(
        f"{study}: accuracy on the {eval_set} test set, {100 * level:g}% intervals, differences in points (%)"
    )
    for line in c.left_out(runs, axes, points) + c.seedless(points, axes):
        click.echo(line)
    click.echo(compare_text.describe(rows, level) or "no pair of grid points with 2+ runs each")
