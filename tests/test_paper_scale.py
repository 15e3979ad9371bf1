"""The gpu suite (editbench/suites/sequential/test_paper_scale.py) without a GPU: its models resolve to the published presets
(whose values and module paths tests/test_published_presets.py checks on meta-device models), its settings are the
paper's, it is collected and skipped on a machine without CUDA; and accelerate's device_map loading path."""
from __future__ import annotations

import pytest
import torch

from editbench.editors.base import load_preset, preset_table
from editbench.models.loader import hub_preset_keys
from editbench.suites.sequential.test_paper_scale import PAPER_MODELS, PAPER_RUNS, paper_experiment

PUBLISHED_IDS = {"gpt2-xl": ("openai-community/gpt2-xl", "gpt2"), "gpt-j": ("EleutherAI/gpt-j-6B", "gptj")}


@pytest.mark.parametrize("model,editor,n_edits", PAPER_RUNS)
def test_paper_models_take_the_presets_checked_on_meta_models(model, editor, n_edits):
    """The gpu suite names its models as a user would (``gpt2-xl``, ``EleutherAI/gpt-j-6b``); they must resolve
    to the same presets that tests/test_published_presets.py checks, value by value and module by module, on
    meta-device copies of the published architectures."""
    published, family = PUBLISHED_IDS[model]
    ours = load_preset(editor, [*hub_preset_keys(PAPER_MODELS[model]), family])
    theirs = load_preset(editor, [*hub_preset_keys(published), family])
    assert ours == theirs
    table = preset_table(editor)  # ... found through a section of the preset file, not by falling back to defaults
    assert any(k in table for k in [*hub_preset_keys(PAPER_MODELS[model]), family])
    assert n_edits >= 1000


def test_paper_experiments_are_the_papers_settings():
    exp = paper_experiment("gpt-j", "memit", 2000)
    assert (exp.model, exp.dataset, exp.samples, exp.history_every, exp.downstream_every) == \
        ("EleutherAI/gpt-j-6b", "counterfact", 4, 10, 10)
    assert {e for _, e, _ in PAPER_RUNS} == {"rome", "memit", "ft-c"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the skip on a machine without CUDA")
def test_gpu_suite_is_collected_and_skipped_without_cuda():
    from tests.test_plugin import run_pytest
    r = run_pytest("suites/sequential/test_paper_scale.py", "-rs", "--model", "tiny-gpt2")
    assert r.returncode == 0, r.stdout[-2000:]
    assert "6 skipped" in r.stdout and "needs CUDA" in r.stdout


def test_device_map_env_loads_through_accelerate(tmp_path, monkeypatch):
    from editbench.models.loader import load_dir
    from editbench.models.tiny import build_tiny
    model, tok = build_tiny("tiny-gpt2")
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    seen = {}
    import transformers
    real = transformers.AutoModelForCausalLM.from_pretrained

    def spy(*a, **kw):
        seen.update(kw)
        return real(*a, **kw)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", spy)
    monkeypatch.setenv("EDITBENCH_DEVICE_MAP", "cpu")   # no GPU here ("auto" would split across the GPUs)
    lm = load_dir(tmp_path / "m")
    assert seen["device_map"] == "cpu" and lm.model.editbench_device_map == "cpu"
    assert next(lm.model.parameters()).device.type == "cpu"
