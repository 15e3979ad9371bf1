"""The package is a strict stack: each layer imports only the layers below it, and no module imports in a cycle.

    models < data < editors < metrics < runner < report < suites < front ends (pytest_plugin, session, runconfig,
    cli, conformance)

``runner`` is the engine (the sequential edit loop, checkpoints, files, provenance, results) and ``report`` the
cross-suite report; each suite is one package ``editbench.suites.<name>`` (registered in ``SUITES``) that owns its
options, run function, gates, result section, figure and pytest module, imports no other suite, and is imported by
the front ends only: ``report`` reads results, never a suite's code. Code that only one suite uses lives in that
suite's package (:func:`test_a_suite_owns_its_code`).

Lazy (in-function) imports count. ``factworld`` and ``trace`` sit beside the stack (they may use any layer; no
layer may import them: the stack reaches them only through registry strings such as
``"editbench.factworld.probes:WorldRecall"``); the front ends dispatch to them. The utilities ``editbench`` (package root), ``suggest``,
``registry``, ``gates`` and ``options`` (the option declarations, which the suites' ``options.py`` use) import no
layer at all, only one another and the suite registry ``editbench.suites`` (its ``__init__``: ``SUITES``).
"""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "editbench"
LAYERS = ["models", "data", "editors", "metrics", "runner", "report", "suites", "front"]
FRONT = {"pytest_plugin", "cli", "conformance", "runconfig", "session"}
BESIDE = {"factworld", "trace"}
UTILITIES = {"", "suggest", "registry", "gates", "options"}
REGISTRY = "editbench.suites"  # the suite registry (SUITES): utilities may read it


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
    """Front ends: the pytest plugin and its helper modules (pytest_*), the session object and the run
    configuration built from the options, the CLI package (one module per subcommand) and conformance."""
    return a in FRONT or a.startswith("pytest_")


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
            elif a in UTILITIES and b not in UTILITIES and dep != REGISTRY:
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
    fake = {"editbench.models.loader": {"editbench.runner.single"}, "editbench.runner.single": set(),
            "editbench.data.a": {"editbench.data.b"}, "editbench.data.b": {"editbench.data.a"},
            "editbench.metrics.x": {"editbench.factworld.world"}, "editbench.factworld.world": set()}
    assert len(violations(fake)) == 2
    assert cycles(fake) == [["editbench.data.a", "editbench.data.b"]]


def test_the_cli_is_one_package_with_a_module_per_subcommand():
    """No ``editbench/cli.py`` or ``editbench/cli_*.py``: every subcommand is a module of ``editbench/cli/``."""
    assert not list(PKG.glob("cli_*.py")) and not (PKG / "cli.py").exists()
    from editbench.cli import COMMANDS
    assert all(m.__name__.startswith("editbench.cli.") and hasattr(m, "add_parser") for m in COMMANDS)


# -- one package per suite ------------------------------------------------------------------------------------
SUITES_DIR = PKG / "suites"
PARTS = ("options", "run", "gates", "result", "figure")
"""The modules every suite package has: ``options`` (its own options, ``OPTIONS``), ``run`` (a ``run*`` function:
config + loaded model -> result), ``gates`` (the values its gates read), ``result`` (its section of the result
schema, a TypedDict documented in docs/results.md, and ``fields()``, the keyword arguments of its results) and
``figure``; plus its pytest module ``test_<name>.py``."""
NO_FIGURE = {"single": "its result is a row of the leaderboard (editbench report), drawn by no figure of its own"}
ENGINE_AREAS = ("models", "data", "editors", "metrics", "runner", "report")
SHARED = {  # engine modules one suite alone imports today, kept in the engine on purpose
    "editbench.runner.checks": "the front ends' input checks (CLI and plugin), which a suite may reuse",
}
GONE = ("runner/single.py", "runner/disabling.py", "runner/isolation.py", "runner/downstream.py",
        "runner/transfer.py", "metrics/disabling.py", "metrics/transfer.py", "data/transfer.py",
        "report/disabling_plots.py", "report/downstream_plots.py", "report/transfer_plots.py",
        "factworld/transfer.py")


def suite_names() -> tuple[str, ...]:
    tree = ast.parse((SUITES_DIR / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "SUITES" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise AssertionError("editbench/suites/__init__.py defines no SUITES")


def missing_parts(pkg: Path, name: str) -> list[str]:
    """What the suite package ``pkg`` lacks of its expected parts."""
    out = []
    if not (pkg / "__init__.py").is_file():
        return [f"{pkg}: no package"]
    for part in PARTS:
        if part == "figure" and name in NO_FIGURE:
            continue
        if not (pkg / f"{part}.py").is_file():
            out.append(f"{name}: no {part}.py")
    if not (pkg / f"test_{name}.py").is_file():
        out.append(f"{name}: no test_{name}.py")
    if (pkg / "run.py").is_file():
        tree = ast.parse((pkg / "run.py").read_text())
        if not any(isinstance(n, ast.FunctionDef) and n.name.startswith("run") for n in tree.body):
            out.append(f"{name}: run.py defines no run* function")
    if (pkg / "result.py").is_file():
        tree = ast.parse((pkg / "result.py").read_text())
        typed = [n for n in tree.body if isinstance(n, ast.ClassDef)
                 and any(getattr(b, "id", None) == "TypedDict" for b in n.bases)]
        if not typed:
            out.append(f"{name}: result.py declares no TypedDict (its section of the result schema)")
        if not any(isinstance(n, ast.FunctionDef) and n.name == "fields" for n in tree.body):
            out.append(f"{name}: result.py has no fields() (the result's keyword arguments)")
    return out


def owned_by_one_suite(g: dict[str, set[str]]) -> dict[str, str]:
    """Engine modules that exactly one suite package imports and nothing else in the stack (front ends aside)."""
    users: dict[str, set[str]] = {}
    for mod, deps in g.items():
        for dep in deps:
            if area(mod) != "suites" and is_front(area(mod)):
                continue
            parts = mod.split(".")
            users.setdefault(dep, set()).add(parts[2] if area(mod) == "suites" and len(parts) > 3 else "~" + mod)
    out = {}
    for mod in g:
        owners = {u for u in users.get(mod, set()) if u != "~" + mod and not u.startswith(f"~{mod}.")}
        if area(mod) in ENGINE_AREAS and len(owners) == 1 and not next(iter(owners)).startswith("~"):
            out[mod] = next(iter(owners))
    return out


def cross_suite_imports(g: dict[str, set[str]]) -> list[str]:
    out = []
    for mod, deps in sorted(g.items()):
        parts = mod.split(".")
        if area(mod) != "suites" or len(parts) < 4:
            continue
        for dep in sorted(deps):
            dp = dep.split(".")
            if area(dep) == "suites" and len(dp) >= 3 and dp[2] != parts[2]:
                out.append(f"{mod} -> {dep} (a suite imports another suite)")
    return out


def test_every_suite_is_a_package_with_its_parts():
    names = suite_names()
    assert {"single", "sequential", "disabling", "downstream", "zsre"} <= set(names)  # and any suite added since
    problems = [p for n in names for p in missing_parts(SUITES_DIR / n, n)]
    assert problems == []
    assert not list(SUITES_DIR.glob("test_*.py")), "a suite's pytest module lives in its package"


def test_a_suite_owns_its_code():
    assert [p for p in GONE if (PKG / p).exists()] == []
    owned = {m: s for m, s in owned_by_one_suite(graph()).items() if m not in SHARED}
    assert owned == {}, "modules only one suite uses belong in that suite's package"
    assert cross_suite_imports(graph()) == []


def test_the_suite_checks_can_fail(tmp_path):
    pkg = tmp_path / "repeat"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "run.py").write_text("def go(): pass\n")
    (pkg / "result.py").write_text("class R(dict): pass\n")
    assert missing_parts(pkg, "repeat") == ["repeat: no options.py", "repeat: no gates.py", "repeat: no figure.py",
                                            "repeat: no test_repeat.py",
                                            "repeat: run.py defines no run* function",
                                            "repeat: result.py declares no TypedDict (its section of the result "
                                            "schema)", "repeat: result.py has no fields() (the result's keyword "
                                            "arguments)"]
    fake = {"editbench.metrics.only_zsre": set(), "editbench.suites.zsre.run": {"editbench.metrics.only_zsre"},
            "editbench.suites.zsre.x": {"editbench.suites.single.run"}, "editbench.suites.single.run": set(),
            "editbench.cli.zsre": {"editbench.metrics.only_zsre"},
            "editbench.report.build": {"editbench.suites.zsre.run"}}
    assert owned_by_one_suite(fake) == {"editbench.metrics.only_zsre": "zsre"}
    assert cross_suite_imports(fake) == ["editbench.suites.zsre.x -> editbench.suites.single.run (a suite imports "
                                         "another suite)"]
    assert violations(fake) == ["editbench.report.build -> editbench.suites.zsre.run (runs up the stack)"]
