"""Model profiles: one object per kind of model (editbench.models.profiles), registered like editors and probes,
and no module outside ``editbench/factworld/`` branching on the fact world's name."""
from __future__ import annotations

import ast
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from editbench import DEFAULT_MODEL, registry
from editbench.data.corpora import resolve_corpus
from editbench.models.profiles import GENERIC, ModelProfile, all_profiles, profile, profile_of, registered_models
from editbench.runner.experiment import Experiment, default_probes

PKG = Path(__file__).resolve().parents[1] / "editbench"
NAME = "factworld"


@pytest.fixture
def profile_entry_points(monkeypatch):
    """Install entry points of the ``editbench.models`` group (none for the other groups)."""

    def install(eps):
        monkeypatch.setattr(registry, "_entry_points",
                            lambda group=registry.ENTRY_POINT_GROUP: list(eps) if group == registry.PROFILE_GROUP
                            else [])
        registry.refresh()

    yield install
    registry.refresh()


def test_every_builtin_profile_loads_under_its_name():
    names = registered_models()
    assert names[:3] == [NAME, "smollm2-135m", "gemma3-270m"] and DEFAULT_MODEL in names
    profiles = all_profiles()
    assert list(profiles) == names
    for name, p in profiles.items():
        assert isinstance(p, ModelProfile) and p.name == name and p.registered and p.description, name
        assert p.preset_keys == (name,)


def test_defaults_come_from_the_profile():
    fw, real = profile(NAME), profile(DEFAULT_MODEL)
    assert (fw.dataset, fw.corpus, fw.pair_source, fw.trace_dataset) == (NAME, NAME, NAME, NAME)
    assert default_probes(NAME) == ("factworld-recall", "factworld-perplexity")
    assert fw.downstream_probe == "factworld-tasks" and fw.downstream_tasks == ("sst2", "mrpc", "cola", "nli")
    assert fw.fixture and not fw.real and fw.cannot("downstream-shots") and fw.cannot("seed") is None
    assert (real.dataset, real.corpus, real.pair_source, real.trace_dataset) == \
        ("counterfact", "gensim-wiki", "zsre", "known_1000")
    assert default_probes(DEFAULT_MODEL) == ("recall-unedited", "perplexity") and real.real and not real.fixture
    assert Experiment(suite="single", editor="rome", model=NAME).dataset_name == NAME
    assert Experiment(suite="single", editor="rome").dataset_name == "counterfact"
    assert profile("tiny-gpt2").n_layers == 4 and profile("tiny-gpt2").byte_level and not profile("tiny-gpt2").real


@pytest.mark.parametrize("name", ["gpt2-xl", "EleutherAI/gpt-j-6b", "/no/such/dir", "./local-model"])
def test_directories_and_hub_ids_get_the_generic_profile(name):
    assert profile(name) is GENERIC and not GENERIC.registered
    assert GENERIC.dataset == "counterfact" and GENERIC.loader.endswith(":load_path_or_hub")


def test_a_loaded_model_is_matched_by_id_or_marker():
    assert profile_of(model_id=NAME) is profile(NAME)
    assert profile_of(model_id="/tmp/builds/factworld-seed1") is profile(NAME)  # a rebuilt checkpoint elsewhere
    assert profile_of(model_id="/tmp/builds/other") is GENERIC
    assert resolve_corpus("auto", model_id="/tmp/builds/factworld-seed1") == NAME
    assert resolve_corpus("auto", model_id="tiny-gpt2") == "gensim-wiki"


def test_a_third_party_profile_is_registered_and_loads(profile_entry_points, monkeypatch):
    import sys
    import types

    mod = types.ModuleType("profilepkg_for_tests")
    mod.load = lambda name, device="cpu", **kw: ("loaded", name, device)
    mod.PROFILE = ModelProfile("my-model", "a third-party model", loader="profilepkg_for_tests:load",
                               dataset="my-records", probes=("my-probe",))
    mod.NOT_A_PROFILE = object()
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    profile_entry_points([
        EntryPoint("my-model", "profilepkg_for_tests:PROFILE", registry.PROFILE_GROUP),
        EntryPoint("broken-model", "profilepkg_for_tests:NOT_A_PROFILE", registry.PROFILE_GROUP),
        EntryPoint(NAME, "profilepkg_for_tests:PROFILE", registry.PROFILE_GROUP),  # a built-in name: ignored
    ])
    from editbench.models.loader import load_model

    assert "my-model" in registered_models() and profile("my-model").dataset == "my-records"
    assert default_probes("my-model") == ("my-probe",)
    assert load_model("my-model") == ("loaded", "my-model", "cpu")
    with pytest.raises(registry.EditorLoadError, match="not an editbench ModelProfile"):
        profile("broken-model")
    assert profile(NAME).loader.startswith("editbench.factworld.") and registry.PROFILES.clashes()


# -- no branch on the fact world's name outside its profile --------------------------------------------------------
def _names_of(tree: ast.AST) -> set[str]:
    """Module-level constants whose value is a string naming the fact world (``FACTWORLD_X = "factworld-..."``)."""
    out = set()
    for node in getattr(tree, "body", []):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and \
                isinstance(node.value.value, str) and NAME in node.value.value:
            out |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return out


def _names_the_world(node: ast.AST, consts: set[str]) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and NAME in node.value
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_names_the_world(e, consts) for e in node.elts)
    return isinstance(node, ast.Name) and node.id in consts


def name_branches(source: str, where: str) -> list[str]:
    """``where:line`` of each comparison with the fact world's name (``== "factworld"``, ``"factworld" in x``,
    ``x in ("factworld", ...)``, ``.startswith("factworld")``, or a module constant holding such a name)."""
    tree = ast.parse(source)
    consts, out = _names_of(tree), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_names_the_world(o, consts) for o in operands):
                out.append(f"{where}:{node.lineno}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in ("startswith", "endswith") and any(_names_the_world(a, consts) for a in node.args):
            out.append(f"{where}:{node.lineno}")
    return sorted(set(out), key=lambda w: int(w.rsplit(":", 1)[1]))  # one file: by line


def branches_outside_the_profile() -> list[str]:
    out = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).as_posix()
        if not rel.startswith("editbench/factworld/"):
            out += name_branches(path.read_text(), rel)
    return out


def test_the_branch_scan_can_fail():
    src = ('FW = "factworld-mend-train"\nDATA = {"factworld": 1}\n'
           'def f(model, ds):\n'
           '    a = model == "factworld"\n'
           '    b = "factworld" in model.lower()\n'
           '    c = model in ("sst2", "factworld")\n'
           '    d = ds == FW\n'
           '    e = model.startswith("factworld")\n'
           '    return DATA.get(model, "factworld")\n')  # data (a table, a default) is not a branch
    assert name_branches(src, "x.py") == ["x.py:4", "x.py:5", "x.py:6", "x.py:7", "x.py:8"]


def test_no_module_outside_factworld_branches_on_its_name():
    assert branches_outside_the_profile() == []
