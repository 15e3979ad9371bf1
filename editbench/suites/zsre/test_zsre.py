"""zsRE question form vs completion form: does an edit made in one format hold in the other?

The seed paper (Gupta et al. 2024, appendix A.1): ~70% of ROME's successful zsRE question-form edits on GPT-2-XL
are not retrieved in completion form. For every selected editor, N question/completion pairs and both directions
(q2c: edit with the question, probe the completion prompt; c2q: the reverse), one edit at a time, restored byte
for byte (editbench.suites.zsre.run); success scored by teacher forcing (token_acc) and free generation (gen),
and by P(new) > P(true) where a target_true exists (prob). Transfer rate = of the edit-format successes, the share
that also succeed in the other format, with a bootstrap 95% interval and n; beside it the raw success rates and
the unedited model's success in the probe format. Gated on thresholds.yaml (suite ``zsre``); a figure per
session (bar per editor, direction and protocol) next to the result JSON.

    pytest suites -m zsre --editor rome                                   # SmolLM2, the paper's zsRE pairs, N = 20
    pytest suites -m zsre --editor rome --dataset counterfact --direction c2q   # counterfact_qna pairs
    pytest suites -m zsre --model factworld --n-records 5                 # the fast fact-world fixture
"""
import dataclasses
from pathlib import Path

import pytest

from editbench.data.registry import DATASETS
from editbench.gates import gates_for
from editbench.runner.experiment import DEFAULT_N, ExperimentError, make_editor
from editbench.suites.zsre.figure import plot_results
from editbench.suites.zsre.metrics import format_row
from editbench.suites.zsre.pairs import pair_source_of
from editbench.suites.zsre.result import fields as result_fields
from editbench.suites.zsre.run import check_transfer_inputs, run_transfer_experiment

pytestmark = pytest.mark.zsre
_DONE: list[dict] = []  # this session's zsre results, for the figure


def _figure(eb_session, result: dict) -> str:
    _DONE.append(result)
    same = [r for r in _DONE if r["experiment"]["model"] == result["experiment"]["model"]
            and r["experiment"]["dataset"] == result["experiment"]["dataset"]]
    e = result["experiment"]
    stem = f"zsre-{Path(e['model']).name}-{Path(e['dataset']).stem}-{result['n']}-{e['zsre_target']}"
    return str(plot_results(same, Path(eb_session.reports_dir) / "figures" / f"{stem}.png"))


def test_zsre_transfer(capsys, editor_name, eb_session, eb_record):
    source = pair_source_of(eb_session.dataset, eb_session.model)
    exp = dataclasses.replace(eb_session.experiment("zsre", editor_name), dataset=source,
                              n=eb_session.n_records or DEFAULT_N["zsre"])
    try:  # the pairs (and the zsRE target, directions) read now: a missing file is one line, before the model loads
        check_transfer_inputs(source, eb_session.zsre_target, eb_session.directions)
    except ExperimentError as e:
        pytest.fail(str(e), pytrace=False)
    # a named source is also a dataset name (zsre, counterfact, factworld), checked like one
    lm = eb_session.model_for(exp) if source in DATASETS else eb_session.models.get(exp.model, exp.device)
    editor = make_editor(exp, lm)
    with capsys.disabled():  # the per-edit progress bar (seconds per edit on SmolLM2)
        result, pairs, errors = run_transfer_experiment(exp, editor, lm, target=eb_session.zsre_target,
                                                        directions=eb_session.directions)
    gates = gates_for(eb_session.thresholds(), "zsre", lm.model_id, editor.name)
    fields = result_fields(exp, editor, lm, result, pairs, errors, gates, target=eb_session.zsre_target,
                           directions=eb_session.directions)
    rec = eb_record(**fields)
    rec["artefacts"]["figure"] = _figure(eb_session, rec)
    with capsys.disabled():
        print(f"\nzsre {editor.name} on {lm.model_id}, {source} ({len(pairs)} pairs, target {eb_session.zsre_target}):")
        for d, by_p in result.summary.items():
            for p, st in by_p.items():
                print("  " + format_row(d, p, st))
    assert gates, (f"no gates for editor {editor.name!r} on model {lm.model_id!r} in thresholds.yaml "
                   "(suite zsre: add a 'default' entry or one for this editor)")
    assert not fields["failures"], "; ".join(fields["failures"])
