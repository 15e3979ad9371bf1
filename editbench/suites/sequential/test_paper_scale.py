"""The seed paper's own settings, for a GPU machine with hub access (marker ``gpu``: skipped, with the reason, where
torch sees no CUDA device).

GPT-2-XL and GPT-J (6B) from the Hugging Face hub, CounterFact, 4 samples (edit orders), the published presets
(``editbench/editors/hparams/*.yaml``: ROME layer 17 / 5, MEMIT layers 13-17 / 3-8), windows 5 and 50, the edit
history re-scored every 10 edits, GLUE downstream every 10 edits. Edit budgets follow the paper: ROME and FT-C
1,000 edits per sample (its ROME CF points come between ~100 and ~1,000), MEMIT 2,000 (CF after ~1,400 on GPT-J).
``--n-edits`` overrides the budget, ``--editor`` narrows the editors, ``--samples`` the samples.

The exact command (one GPU with >= 40 GB for GPT-J in float32; a first run downloads the models and computes the
covariance statistics, hours)::

    pip install editbench && pip install torch --index-url https://download.pytorch.org/whl/cu124
    pytest --pyargs editbench.suites -m gpu --device cuda --reports-dir reports/paper -p no:cacheprovider
    editbench report reports/paper --out reports/paper/board

Models larger than one GPU load through accelerate's ``device_map="auto"`` (``EDITBENCH_DEVICE_MAP=auto``).
CI checks the module paths and presets of both models on meta-device copies (tests/test_paper_scale.py); it does
not run this suite.
"""
import pytest

from editbench.runner.experiment import Experiment, make_editor
from editbench.suites.sequential.figure import figure
from editbench.suites.sequential.run import run

pytestmark = pytest.mark.gpu

PAPER_MODELS = {"gpt2-xl": "gpt2-xl", "gpt-j": "EleutherAI/gpt-j-6b"}
PAPER_RUNS = (  # (model, editor, edits per sample): the paper's Figures 1-4 and appendix A.4
    ("gpt2-xl", "rome", 1000), ("gpt2-xl", "memit", 2000), ("gpt2-xl", "ft-c", 1000),
    ("gpt-j", "rome", 1000), ("gpt-j", "memit", 2000), ("gpt-j", "ft-c", 1000),
)
PAPER_SAMPLES = 4
SETTINGS = {"history_every": 10, "downstream_every": 10, "checkpoint_every": 50}


def paper_experiment(model: str, editor: str, n_edits: int, *, samples: int = PAPER_SAMPLES, device: str = "cuda",
                     out_dir: str = "reports/paper", seed: int = 0, resume: bool = True) -> Experiment:
    """The Experiment the suite runs for one (model, editor): what a user may also run from Python."""
    return Experiment(suite="sequential", editor=editor, model=PAPER_MODELS.get(model, model), dataset="counterfact",
                      n=n_edits, samples=samples, seed=seed, device=device, out_dir=out_dir, resume=resume,
                      protocols=("prob", "token_acc", "gen"), **SETTINGS)


@pytest.mark.parametrize("model,editor,n_edits", PAPER_RUNS, ids=[f"{m}-{e}" for m, e, _ in PAPER_RUNS])
def test_paper_scale(model, editor, n_edits, capsys, eb_session, eb_record):
    if eb_session.editors_given and editor not in eb_session.editors_given:
        pytest.skip(f"--editor {' '.join(eb_session.editors_given)} given")
    device = eb_session.device if eb_session.device.startswith("cuda") else "cuda"
    exp = paper_experiment(model, editor, eb_session.n_edits or n_edits, samples=eb_session.samples
                           if eb_session.samples > 1 else PAPER_SAMPLES, device=device,
                           out_dir=eb_session.reports_dir, seed=eb_session.seed)
    lm = eb_session.models.get(exp.model, exp.device)
    for sample in range(exp.samples):
        with capsys.disabled():
            summary, errors = run(exp, make_editor(exp, lm), lm, sample=sample)
        figure(summary)
        eb_record(suite="sequential", experiment={**exp.to_dict(), "sample": sample},
                  metrics={k: v for k, v in summary["immediate_mean"].items() if not k.endswith("_correct")},
                  n=summary["n_edits"], gates={}, gate_values={}, failures=[], verdict="NO GATES",
                  timings=dict(summary.get("timing") or {}), artefacts=dict(summary["paths"]), cost=summary["cost"],
                  record_errors=errors[:20], details={"summary": summary},
                  provenance={**summary["provenance"], "created": summary["timing"].get("created")})
        assert summary["complete"], f"sample {sample} stopped after {summary['n_edits']} edits"
