"""The layout as a test: which package may import which, written once, and no import cycles inside a package.

Every import counts, including those inside functions (a deferred import is still a dependency). A module may
import its own package and what :data:`ALLOWED` lists for the most specific prefix of its name.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("contract", "lambdas", "training", "model_export", "infra", "bench")

# module prefix -> the module prefixes it may import (besides itself). Arrows point down: serving and training
# share only the contract; export reads what training wrote and checks it with the serving engine; the stacks run
# the serving code (and build its package); the benchmarks and experiments sit on top of everything.
ALLOWED: dict[str, set[str]] = {
    "contract": set(),
    "lambdas": {"contract"},
    "lambdas.engine": {"contract", "lambdas.engine"},  # the engine needs nothing of the AWS side
    "training": {"contract"},
    "model_export": {"contract", "training", "lambdas.engine"},
    "model_export.package": set(),  # the Lambda packager: imported by the CDK app, so it imports nothing of ours
    "infra": {"contract", "lambdas", "model_export.package"},
    "bench": {"contract", "lambdas", "training", "model_export", "infra"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imports_of(path: Path, name: str) -> set[str]:
    """Every module of ours that ``path`` imports (absolute names; relative imports resolved)."""
    found: set[str] = set()
    ours = set(modules())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import module` depends on the module; `from module import name` on the module
            subs = {f"{base}.{a.name}" for a in node.names} & ours
            found |= subs if subs else {base}
    return {m for m in found if m.split(".")[0] in PACKAGES and m in ours}


def rule_for(name: str) -> tuple[str, set[str]]:
    prefix = max((p for p in ALLOWED if name == p or name.startswith(p + ".")), key=len)
    return prefix, ALLOWED[prefix]


def allowed(name: str, target: str) -> bool:
    prefix, targets = rule_for(name)
    return any(target == t or target.startswith(t + ".") for t in {prefix, *targets})


def test_every_package_has_a_rule_and_every_rule_a_package():
    assert {p.split(".")[0] for p in ALLOWED} == set(PACKAGES)
    assert all(p in modules() for p in ALLOWED), sorted(set(ALLOWED) - set(modules()))


def test_imports_point_only_the_allowed_ways():
    wrong = [
        f"{name} imports {target}"
        for name, path in modules().items()
        for target in sorted(imports_of(path, name))
        if not allowed(name, target)
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("importer", "target", "ok"),
    [
        ("training.cli", "lambdas.engine", False),
        ("lambdas.engine.engine", "lambdas.service.aws", False),
        ("lambdas.api.handler", "training.data", False),
        ("training.cli", "bench.tune", False),
        ("model_export.export", "bench.serving", False),
        ("infra.events_export", "training.data", False),
        ("infra.bundling", "model_export.export", False),
        ("model_export.package", "training.data", False),
        ("model_export.export", "lambdas.engine.engine", True),
        ("infra.local.stack", "lambdas.service.aws", True),
        ("bench.serving", "model_export.export", True),
    ],
)
def test_the_rule_itself(importer, target, ok):
    """The rule refuses the arrows that used to point the wrong way (and allows the ones the layout needs)."""
    assert allowed(importer, target) is ok


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles_inside_a_package(package):
    mods = {n: p for n, p in modules().items() if n.split(".")[0] == package}
    graph = {
        n: {t for t in imports_of(p, n) if t in mods and t != n and not n.startswith(t + ".")} for n, p in mods.items()
    }
    # a package's __init__ importing its own submodules (a facade) is not a cycle with them
    graph = {n: {t for t in deps if not t.startswith(n + ".")} for n, deps in graph.items()}
    state: dict[str, str] = {}
    cycles: list[list[str]] = []

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


def test_no_library_module_reaches_back_into_the_train_command():
    """The command is a thin wrapper; only the experiments and the SageMaker job's entry point (a command itself,
    which runs training and export as SageMaker's container runs a program) run it as a whole."""
    runners = {"training.train", "model_export.sagemaker_job"}
    users = sorted(
        n
        for n, p in modules().items()
        if "training.train" in imports_of(p, n) and n not in runners and not n.startswith("bench.")
    )
    assert users == [], users


def test_the_lambda_code_is_serving_code_only():
    """The functions' package holds ``lambdas`` and ``contract``; every module of ``lambdas`` is one the
    handlers load (a client, a spec generator or a fake context would be dead weight in every cold start)."""
    code = textwrap.dedent(
        """
        import sys
        import lambdas.api.handler, lambdas.worker.handler, lambdas.retrain.handler
        from lambdas.engine import Engine, load_artifact
        print("\\n".join(sorted(m for m in sys.modules if m.split(".")[0] == "lambdas")))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = set(done.stdout.split())
    shipped = {n for n in modules() if n.split(".")[0] == "lambdas"}
    assert shipped - loaded == set()
