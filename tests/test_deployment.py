"""The software stacks beyond the local venv: the conda environment and the Apptainer image definition.

Neither conda nor apptainer runs on this machine, so these check what can go wrong without them: pins,
paths that would resolve elsewhere once Snakemake copies the file, and files the image copies in."""

import re
import tomllib

import yaml
from workflow_helpers import REPO

ENV = REPO / "envs/chaosgrid.yaml"


def _pip_pins() -> dict[str, str]:
    env = yaml.safe_load(ENV.read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert all("==" in line for line in pip), f"unpinned or path entries in {ENV.name}: {pip}"
    return dict(line.split("==") for line in pip)


def test_the_conda_environment_pins_every_runtime_dependency():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = {re.match(r"[A-Za-z0-9_.-]+", d)[0].lower() for d in project["dependencies"]}
    assert names == {n.lower() for n in _pip_pins()}


def test_chaosgrid_comes_from_the_checkout_by_the_post_deploy_script():
    script = (REPO / "envs/chaosgrid.post-deploy.sh").read_text()  # Snakemake's naming: <env>.post-deploy.sh
    assert 'pip install --no-deps --editable "${CHAOSGRID_CHECKOUT:?' in script
    assert "CHAOSGRID_CHECKOUT=workflow.basedir," in (REPO / "workflow/rules/common.smk").read_text()


def test_the_image_definition_copies_existing_files_and_uses_the_same_pins():
    definition = (REPO / "envs/chaosgrid.def").read_text()
    files = definition.split("%files")[1].split("%post")[0].split("\n")
    sources = [line.split()[0] for line in files if line.strip()]
    assert sources and all((REPO / s).exists() for s in sources), sources
    assert "conda env update --name base --file /opt/chaosgrid/envs/chaosgrid.yaml" in definition
    assert 'container: config["container"]' in (REPO / "Snakefile").read_text()
