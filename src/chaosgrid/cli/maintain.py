"""Maintenance: files generated from the code (the config schema, the models' sizes)."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("schema")
@click.option(
    "--repo",
    type=click.Path(exists=True, file_okay=False),
    default=".",
    show_default=True,
    help="The chaosgrid checkout whose files to check or rewrite.",
)
@click.option("--write", is_flag=True, help="Rewrite the files instead of checking them.")
def schema_command(repo, write) -> None:
    """Check (or with --write regenerate) what derives from chaosgrid.cells.PARAMETERS: the config schema's
    cell parameters and config/README.md's tables. Exits 1 naming each file that has drifted."""
    from chaosgrid.plan.schema import render_readme, render_schema

    files = {
        Path(repo) / "workflow/schemas/config.schema.yaml": render_schema,
        Path(repo) / "config/README.md": render_readme,
    }
    drifted = []
    for path, render in files.items():
        text = path.read_text()
        wanted = render(text)
        if wanted != text:
            drifted.append(str(path))
            if write:
                path.write_text(wanted)
    if drifted and not write:
        raise click.ClickException(
            f"out of date with chaosgrid.cells.PARAMETERS: {', '.join(drifted)}; run "
            f"`chaosgrid schema --write`"
        )
    click.echo(f"rewrote {', '.join(drifted)}" if drifted else "schema and README tables are up to date")


@click.command("model-sizes")
@click.option("--write", is_flag=True, help="Rewrite the table instead of checking it.")
def model_sizes_command(write) -> None:
    """Check (or with --write remake) chaosgrid/model_sizes.json, the built-in models' parameters and
    activation bytes and forward FLOPs by width that planning estimates a shard's memory and compute from, measured on torch's meta device."""
    from chaosgrid import footprint, models

    entries = [f"{json.dumps(key)}: {json.dumps(sizes)}" for key, sizes in models.size_table().items()]
    wanted = "{\n" + ",\n".join(entries) + "\n}\n"  # an entry a line
    if footprint.TABLE.read_text() == wanted:
        click.echo(f"{footprint.TABLE} is up to date")
    elif write:
        footprint.TABLE.write_text(wanted)
        click.echo(f"rewrote {footprint.TABLE}")
    else:
        raise click.ClickException(
            f"{footprint.TABLE} is out of date with chaosgrid.models: run `chaosgrid model-sizes --write`"
        )
