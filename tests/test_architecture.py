"""The package is a strict stack: each layer imports only the layers below it, and no module imports in a cycle.

    models < data < editors < metrics < runner < report < front ends (pytest_plugin, cli, suites, conformance)

Lazy (in-function) imports count. ``factworld`` and ``trace`` sit beside the stack (they may use any layer; no
layer may import them: the stack reaches them only through registry strings such as
``"editbench.factworld.probes:WorldRecall"``); the front ends dispatch to them. The utilities ``editbench`` (package root), ``suggest``,
``registry`` and ``gates`` import no layer at all.
"""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "editbench"
LAYERS = ["models", "data", "editors", "metrics", "runner", "report", "front"]
FRONT = {"pytest_plugin", "cli", "suites", "conformance"}
BESIDE = {"factworld", "trace"}
UTILITIES = {"", "suggest", "registry", "gates"}


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    return ".".join(rel.parts).removesuffix(".__init__")


def imports_of(path: Path) -> set[str]:
    """Every editbench module ``path`` imports, at any depth of the file (lazy imports included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("editbench"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                is_module = (PKG.parent / (sub.replace(".", "/") + ".py")).exists() or \
                    (PKG.parent / sub.replace(".", "/") / "__init__.py").exists()
                out.add(sub if is_module else node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("editbench")}
    return out


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in PKG.rglob("*.py")}


def area(module: str) -> str:
    """The top-level part of ``editbench`` a module belongs to ("" for the package root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def is_front(a: str) -> bool:
    """Front ends: the pytest plugin and its helper modules (pytest_*), the CLI and its subcommands (cli_*), the
    suites and conformance."""
    return a in FRONT or a.startswith(("pytest_", "cli_"))


def rank(module: str) -> int | None:
    a = area(module)
    if is_front(a):
        return LAYERS.index("front")
    return LAYERS.index(a) if a in LAYERS else None


def violations(g: dict[str, set[str]]) -> list[str]:
    out = []
    for mod, deps in sorted(g.items()):
        for dep in sorted(deps):
            a, b = area(mod), area(dep)
            if a == b or a in BESIDE or is_front(a):  # beside packages and front ends may use anything
                continue
            if b in BESIDE:
                out.append(f"{mod} -> {dep} (the stack must not import the {b} package)")
            elif a in UTILITIES and b not in UTILITIES:
                out.append(f"{mod} -> {dep} (a utility imports a layer)")
            elif rank(mod) is not None and rank(dep) is not None and rank(dep) > rank(mod):
                out.append(f"{mod} -> {dep} (runs up the stack)")
    return out


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (a module importing its own package's __init__
    is no cycle: Python imports the package first)."""
    edges = {m: {d for d in ds if d in g and d != m and not m.startswith(d + ".")} for m, ds in g.items()}
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_runs_up_the_stack():
    assert violations(graph()) == []


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_the_checks_can_fail():
    fake = {"editbench.models.loader": {"editbench.suites.single.run"}, "editbench.suites.single.run": set(),
            "editbench.data.a": {"editbench.data.b"}, "editbench.data.b": {"editbench.data.a"},
            "editbench.metrics.x": {"editbench.factworld.world"}, "editbench.factworld.world": set()}
    assert len(violations(fake)) == 2
    assert cycles(fake) == [["editbench.data.a", "editbench.data.b"]]
