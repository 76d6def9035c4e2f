"""`chaosgrid rehearse`: a config run end to end through the real workflow with what makes it expensive
capped (chaosgrid.plan.rehearsal), in a folder of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click


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
@click.option("--dry-run", "-n", is_flag=True, help="Write the capped config and plan it; train nothing.")
@click.argument("snakemake_args", nargs=-1, type=click.UNPROCESSED)
def rehearse_command(configfile, workdir, cores, snakefile, dry_run, snakemake_args) -> None:
    """Run CONFIGFILE's studies through the workflow with 2 seeds, one value per axis, about an epoch of
    training and a few probe planes, everything else as written; prints each cap. Ends in the studies'
    tables, figures and report pages under --workdir. Arguments after `--` go to snakemake."""
    import yaml

    from chaosgrid.plan.rehearsal import rehearsal

    config, said = rehearsal(yaml.safe_load(Path(configfile).read_text()))
    folder = Path(workdir or Path("rehearsals") / Path(configfile).stem)
    folder.mkdir(parents=True, exist_ok=True)
    # relative paths in the config start where the command runs, not in the rehearsal's folder
    schema = yaml.safe_load((Path(snakefile).parent / "workflow/schemas/config.schema.yaml").read_text())
    config["data_root"] = os.path.abspath(
        config.get("data_root", schema["properties"]["data_root"]["default"])
    )
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
        click.echo(f"rehearsed {configfile}: its report pages and figures are under {folder}/results")
