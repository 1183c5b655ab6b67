"""training/ as parts with one job each: no import cycles, not even through imports inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

TRAINING = Path(__file__).resolve().parents[2] / "training"


def import_graph() -> dict[str, set[str]]:
    modules = {p.stem for p in TRAINING.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for name in modules:
        deps: set[str] = set()
        for node in ast.walk(ast.parse((TRAINING / f"{name}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "training":
                parts = node.module.split(".")
                deps |= {a.name for a in node.names if a.name in modules} if len(parts) == 1 else {parts[1]}
            elif isinstance(node, ast.Import):
                deps |= {a.name.split(".")[1] for a in node.names if a.name.startswith("training.")}
        graph[name] = deps - {name}
    return graph


def test_no_import_cycles_in_training():
    graph, state, cycles = import_graph(), {}, []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                cycles.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, cycles


def test_no_module_reaches_back_into_the_train_command():
    users = sorted(name for name, deps in import_graph().items() if "train" in deps)
    assert users in ([], ["demo"]), users  # the demo runs the command; nothing else needs it
