"""Study analyses, computed after the fact from the runs and predictions tables, each declared once here.

An `Analysis` names its tables and figures, the function that computes the tables (called as
`compute(runs, prediction_files, axes)`, returning one DataFrame per table in order), the function that
draws the figures (`draw(tables, axes, study, outdir)`, tables by name, its own and the study tables it
names in `reads`, returning a line for the log), when it applies to a study, the study blocks it owns
(`blocks`: keys of a study's config that are not cell parameters) and the further files it reads
(`inputs`). One generic Snakemake rule pair, one script (`scripts/analysis.py`) and one CLI command
(`chaosgrid analysis-figures`) serve every analysis, so a new one costs a module, an entry here, its figures
module (`chaosgrid.figures.<name>`) and its report captions. Functions are named as "module:function" so
that planning imports no pandas.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from chaosgrid.cells import BATCHING
from chaosgrid.evalsets import PLANES

# What every study gets before any analysis: the aggregated tables and the figures drawn from them.
STUDY_TABLES = ("runs", "evals", "summary", "history")
STUDY_FIGURES = ("accuracy_distribution", "mean_std_by_axis", "shifts", "training_curves")
# Tables every study shows in its report as HTML pages (the analyses that make them apply to every study).
REPORT_TABLES = ("summary", "variance", "comparisons", "churn")
# Its report pages: its results (question, headline numbers, figures with captions), an overview of what the
# study runs (from its config), then those tables.
REPORT_PAGES = ("results", "overview", *REPORT_TABLES)


@dataclass(frozen=True)
class Analysis:
    name: str
    tables: tuple[str, ...]
    figures: tuple[str, ...]
    compute: str  # "module:function" -> tuple of DataFrames, one per table ("": no tables of its own)
    draw: str  # "module:function" drawing every figure into a folder
    applies: Callable[[dict], bool] = lambda study: True
    reads: tuple[str, ...] = ()  # study tables (STUDY_TABLES) the figures draw from besides the analysis's
    options: tuple[str, ...] = ()  # keys of the study's config passed to `compute` as keyword arguments
    blocks: tuple[str, ...] = ()  # the study config keys it owns (checked by chaosgrid.plan at planning)
    inputs: str = ""  # "module:function" (study, studies, shards, curves) -> further input files by name

    def function(self, which: str) -> Callable:
        module, name = getattr(self, which).split(":")
        return getattr(importlib.import_module(module), name)

    def extra_inputs(self, study: str, studies: dict, shards: Mapping, curves: dict) -> dict:
        """The files this analysis of `study` reads besides its runs table and predictions."""
        return self.function("inputs")(study, studies, shards, curves) if self.inputs else {}


ANALYSES = {
    a.name: a
    for a in (
        # every study's own figures, from the aggregated tables (rule aggregate makes them; no tables of its own)
        Analysis("study", (), STUDY_FIGURES, "", "chaosgrid.figures.study:draw", reads=STUDY_TABLES[1:]),
        Analysis(
            "variance",
            ("variance", "churn", "better_seeds", "independence"),
            ("variance_by_axis", "independence", "churn", "variance_vs_shift"),
            "chaosgrid.analysis.variance:study_tables",
            "chaosgrid.figures.variance:draw",
        ),
        Analysis(
            "compare",
            ("comparisons",),
            ("comparisons",),
            "chaosgrid.analysis.compare:study_comparisons",
            "chaosgrid.figures.compare:draw",
        ),
        Analysis(
            "regions",
            ("regions", "region_maps", "region_agreement", "triplets"),
            ("decision_regions", "double_descent", "region_agreement", "region_bars"),
            "chaosgrid.analysis.regions:study_regions",
            "chaosgrid.figures.regions:draw",
            applies=lambda study: PLANES in study.get("shifts", []),
            options=("planes",),
            blocks=("planes",),
            inputs="chaosgrid.plan.paths:region_inputs",
        ),
        Analysis(
            "full_batch",
            ("full_batch", "full_batch_curves"),
            ("full_batch_table", "full_batch_accuracy", "full_batch_curves", "full_batch_clipped"),
            "chaosgrid.analysis.full_batch:study_full_batch",
            "chaosgrid.figures.full_batch:draw",
            # study 2's table is about batching: it applies to studies whose named variants change it
            applies=lambda study: any(
                k in v for v in (study.get("variants") or {}).values() for k in BATCHING
            ),
            reads=("history",),
        ),
        Analysis(
            "ensembles",
            ("ensembles", "diversity", "curves"),
            ("ensemble_error", "ensemble_diversity", "curves"),
            "chaosgrid.analysis.ensembles:study_ensembles",
            "chaosgrid.figures.ensembles:draw",
            applies=lambda study: bool(study.get("ensembles") or study.get("curves")),
            options=("ensembles",),
            blocks=("ensembles", "curves"),
            inputs="chaosgrid.plan.paths:ensemble_inputs",
        ),
        Analysis(
            "sequential",
            ("looks", "decisions"),
            ("sequential",),
            "chaosgrid.analysis.sequential:study_decisions",
            "chaosgrid.figures.sequential:draw",
            applies=lambda study: "until" in study,
            options=("until",),
            blocks=("until",),
        ),
    )
}


def study_figures(study: dict) -> list[str]:
    """The figures of a study, in reading order: its own, then each analysis's that applies."""
    return [f for a in ANALYSES.values() if a.applies(study) for f in a.figures]
