"""`chaosgrid rehearse`: a config run end to end through the real workflow with what makes it expensive
capped (chaosgrid.plan.rehearsal), in a folder of its own."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import click

from chaosgrid.cli.options import CONFIG_SCHEMA, with_defaults


@click.command("rehearse")
@click.argument("configfile", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--workdir",
    type=click.Path(file_okay=False),
    help="Folder the rehearsal runs in (its capped config, results and report). Default: rehearsals/<config>.",
)
@click.option("--cores", type=click.IntRange(1), default=os.cpu_count() or 1, show_default="all")
@click.option(
    "--snakefile",
    type=click.Path(exists=True, dir_okay=False),
    default="Snakefile",
    show_default=True,
    help="The workflow's Snakefile (run from the chaosgrid checkout).",
)
@click.option(
    "--steps",
    type=click.IntRange(1),
    help="Training steps per epoch of the largest mini-batch on stand-in data (default: the rehearsal's, 2; "
    "more: a throughput worth quoting).",
)
@click.option("--dry-run", "-n", is_flag=True, help="Write the capped config and plan it; train nothing.")
@click.argument("snakemake_args", nargs=-1, type=click.UNPROCESSED)
def rehearse_command(configfile, workdir, cores, snakefile, steps, dry_run, snakemake_args) -> None:
    """Run CONFIGFILE's studies through the workflow with 2 seeds, one value per axis, about an epoch of
    training and a few probe planes, everything else as written; prints each cap. Ends in the studies'
    tables, figures and report pages under --workdir. Arguments after `--` go to snakemake."""
    import yaml

    from chaosgrid.plan.rehearsal import STEPS, rehearsal

    config, said = rehearsal(yaml.safe_load(Path(configfile).read_text()))
    folder = Path(workdir or Path("rehearsals") / Path(configfile).stem)
    folder.mkdir(parents=True, exist_ok=True)
    # relative paths in the config start where the command runs, not in the rehearsal's folder
    schema = yaml.safe_load((Path(snakefile).parent / CONFIG_SCHEMA).read_text())
    config["data_root"] = os.path.abspath(
        config.get("data_root", schema["properties"]["data_root"]["default"])
    )
    said_data, examples = _standins(config, folder, steps or STEPS)
    if said_data:
        said.append(f"stand-in data under {config['data_root']} (the real files are not read):")
        said += [f"  {line}" for line in said_data]
    for study in config["studies"].values():
        if str(study.get("dataset", "")).startswith("npz:"):
            study["dataset"] = "npz:" + os.path.abspath(study["dataset"][4:])
        if isinstance(study.get("dataset"), dict) and "npz" in study["dataset"]:
            study["dataset"] = {"npz": os.path.abspath(study["dataset"]["npz"])}
    capped = folder / "config.yaml"
    capped.write_text(yaml.safe_dump(config, sort_keys=False))
    click.echo(f"rehearsing {configfile} in {folder}: capped {capped}")
    for line in said or ["nothing to cap: it is small already"]:
        click.echo(f"  {line}")
    python_path = os.pathsep.join(
        os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p
    )
    snakemake = [sys.executable, "-m", "snakemake", "--snakefile", os.path.abspath(snakefile)]
    command = [*snakemake, "--directory", str(folder), "--configfile", str(capped.resolve())]
    command += ["--cores", str(cores), *(["-n"] if dry_run else []), *snakemake_args]
    done = subprocess.run(command, env={**os.environ, "PYTHONPATH": python_path}, check=False)
    if done.returncode:
        raise click.ClickException(f"the rehearsal of {configfile} failed (snakemake exit {done.returncode})")
    if not dry_run:
        _measured(config, folder, Path(snakefile).parent, examples)
        click.echo(f"rehearsed {configfile}: its report pages and figures are under {folder}/results")


def _measured(config: dict, folder: Path, checkout: Path, examples: tuple[int, int] | None) -> None:
    """Each training job's estimated memory beside its measured peak, and its throughput
    (plan.rehearsal.measured)."""
    from chaosgrid.plan.rehearsal import measured
    from chaosgrid.plan.workflow import Plan

    with_defaults(config, checkout)  # the defaults the workflow planned with
    plan = Plan.of(config, results=folder / "results")
    found = measured(plan, folder / "results", config["execution"]["engine"], examples)
    if not found:
        return
    click.echo("each training job's memory, estimated by planning / measured peak, and its throughput:")
    for job in found:
        click.echo(
            f"  {job.study} {job.shard}: {job.device} {job.estimated_mb:,.0f} / {job.measured_mb:,.0f} MB = "
            f"{job.estimated_mb / job.measured_mb:.2f}; {job.tflops:.3f} TFLOP/s"
        )
    median = statistics.median(job.tflops for job in found)
    click.echo(f"median throughput {median:.3f} TFLOP/s (on a GPU: the config's `gpu: {{tflops: ...}}`)")


def _standins(config: dict, folder: Path, steps: int) -> tuple[list[str], tuple[int, int] | None]:
    """Write stand-ins for the published sets the config reads, where chaosgrid.standin makes them all, and
    point `data_root` at them; once per size (rewriting them would make every job run again). A line per
    set, and the (training, test) sizes."""
    from chaosgrid import standin
    from chaosgrid.cells import CELL_DEFAULTS
    from chaosgrid.downloads import sources_for
    from chaosgrid.plan.rehearsal import standin_examples

    sources: dict[str, set[str]] = {}
    for study in config["studies"].values():
        needed = sources_for(str(study.get("dataset", CELL_DEFAULTS["dataset"])), study.get("shifts", []))
        for name, files in needed.items():
            sources.setdefault(name, set()).update(files)
    if not sources or not set(sources) <= standin.MADE:
        return [], None
    train, test = standin_examples(config, steps)
    root = (folder / f"standin-data/{train}-{test}").resolve()
    config["data_root"] = str(root)
    if not root.exists():
        partial = root.with_name(root.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        said = standin.write(partial, {n: sorted(f) for n, f in sources.items()}, train, test)
        (partial / "made.txt").write_text("\n".join(said) + "\n")
        partial.rename(root)
    return (root / "made.txt").read_text().splitlines(), (train, test)
