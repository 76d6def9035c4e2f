"""The layering is a test, not a hope: import-linter's contracts (.importlinter) and no import circle anywhere
in chaosgrid (grimp, which import-linter is built on; function-local imports count)."""

import subprocess
import sys
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[1]


def test_the_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every group of chaosgrid modules that import each other, directly or through others (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in graph.find_modules_directly_imported_by(module):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while not group or group[-1] != module:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_module_of_chaosgrid_imports_itself_back():
    graph = grimp.build_graph("chaosgrid")
    assert circles(graph) == []
    graph.add_import(
        importer="chaosgrid.cells", imported="chaosgrid.plan.studies"
    )  # the check finds one it is shown
    assert any({"chaosgrid.cells", "chaosgrid.plan.studies"} <= set(group) for group in circles(graph))
