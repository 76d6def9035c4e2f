"""The docs a newcomer reads can be trusted: every link resolves, and every command they show runs, or, where
running it would train (a study), names files and options that exist (every config is dry-run by
test_workflow.py::test_dry_run_of_every_config)."""

import re
import shlex
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from chaosgrid.cli import main

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", REPO / "config/README.md", *sorted((REPO / "docs").glob("*.md"))]


def commands(page: Path) -> list[str]:
    """Shell commands shown on a page: fenced bash lines (continuations joined) and inline `snakemake ...`,
    `chaosgrid ...` and `make ...` code."""
    text = page.read_text()
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
        joined = block.replace("\\\n", " ")
        found += [line.split("#")[0].strip() for line in joined.splitlines() if line.split("#")[0].strip()]
    found += re.findall(r"`((?:[A-Z]+=\S+ )?(?:snakemake|chaosgrid|make) [^`]+)`", text)
    return found


def test_every_link_resolves():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#]+)\)", page.read_text()):
            if not target.startswith("http"):
                assert (page.parent / target).exists(), (
                    f"{page.relative_to(REPO)} links to a missing {target}"
                )


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_every_command_shown_exists(page):
    makefile = (REPO / "Makefile").read_text()
    runner = CliRunner()
    for command in commands(page):
        words = shlex.split(command)
        while "=" in words[0] and not words[0].startswith("-"):  # PYTHONPATH=examples snakemake ...
            words = words[1:]
        placeholder = lambda word: "<" in word or word.isupper()  # config/<study>.yaml, NAME
        program = Path(words[0]).name
        if program == "make":
            assert re.search(rf"^{words[1]}:", makefile, flags=re.MULTILINE), (
                f"{page.name}: no make target in {command}"
            )
        elif program == "chaosgrid":
            sub = [w for w in words[1:] if not w.startswith("-")][:1]
            done = runner.invoke(main, [*sub, "--help"])
            assert done.exit_code == 0, f"{page.name}: {command}: {done.output}"
        elif program == "snakemake":
            for i, word in enumerate(words):
                if word == "--configfile" and not placeholder(words[i + 1]):
                    assert (REPO / words[i + 1]).exists(), f"{page.name}: {command} names a missing config"
                if word == "--profile" and not placeholder(words[i + 1]):
                    assert (REPO / words[i + 1] / "config.yaml").exists(), (
                        f"{page.name}: no profile {words[i + 1]}"
                    )
        elif program == "python" and words[1].startswith("benchmarks/"):
            assert (REPO / words[1]).exists(), f"{page.name}: {command}"


def test_the_readme_stays_short_and_points_to_the_docs():
    readme = (REPO / "README.md").read_text()
    assert len(readme) < 10_000
    assert all(f"(docs/{p.name})" in readme for p in (REPO / "docs").glob("*.md"))


def test_one_glossary_for_the_parts_of_a_difference():
    """The words of docs/statistics.md's glossary, and none of the retired ones that meant two things
    ("test-set sampling" for both the coin-flip part and the test-set draw), across code, captions and docs."""
    glossary = (REPO / "docs/statistics.md").read_text().split("## Words", 1)[1].split("\n## ", 1)[0]
    assert all(f"**{word}**" in glossary for word in ("run-to-run", "per-example coin flips", "distribution-wise",
                                                        "test-set draw"))  # fmt: skip
    files = [*PAGES, *(REPO / "workflow/report").glob("*.rst"), *(REPO / "src/chaosgrid").rglob("*.py")]
    for path in files:
        text = " ".join(path.read_text().split()).lower()
        for retired in ("test-set sampling", "test-set noise", "test set noise", "sampling noise"):
            assert retired not in text, (
                f"{path.relative_to(REPO)} says {retired!r}; docs/statistics.md: Words"
            )


def yaml_blocks(path: Path) -> list[tuple[int, str]]:
    """(line, text) of each ```yaml block of a Markdown file."""
    lines, blocks, start = path.read_text().splitlines(), [], None
    for i, line in enumerate(lines):
        if line.strip() == "```yaml":
            start = i + 1
        elif line.strip() == "```" and start is not None:
            blocks.append((start, "\n".join(lines[start:i])))
            start = None
    return blocks


DOCUMENTED = [(path, line, text) for path in [*sorted((REPO / "docs").glob("*.md")), REPO / "config/README.md",
                                               REPO / "README.md"] for line, text in yaml_blocks(path)]  # fmt: skip


@pytest.mark.parametrize("path, line, text", DOCUMENTED, ids=[f"{p.name}:{n}" for p, n, _ in DOCUMENTED])
def test_every_documented_yaml_form_is_accepted_by_the_schema(path, line, text):
    """A form the docs show can never be refused: each block is a whole config, or a study's keys (indented
    or not); a block of one-line alternatives (the same key twice) is checked line by line."""
    import textwrap

    from chaosgrid.configs import schema_problem

    schema = REPO / "workflow/schemas/config.schema.yaml"
    body = textwrap.dedent(text)
    entries = [ln for ln in body.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    keys = [ln.partition(":")[0] for ln in entries if not ln[0].isspace()]
    alternatives = len(set(keys)) < len(keys) and len(keys) == len(entries)
    for fragment in entries if alternatives else [body]:
        parsed = yaml.safe_load(fragment)
        config = parsed if "studies" in parsed else {"studies": {"documented": parsed}}
        assert schema_problem(config, schema) is None, f"{path.name}:{line}: {fragment}"
