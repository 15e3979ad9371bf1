"""The single-edit suite on Gemma 3 270M (the second real model family), as a user runs it after the README's
install line for the ``gemma3`` extra: `pytest suites -m single --model gemma3-270m --editor null --editor rome
--n-records 5`. ``slow`` (the first run converts the model, ~2-3 min, and computes a covariance); skipped, saying
why, when the Gemma packages are not installed."""
import json

import pytest

from editbench.models.gemma3 import INSTALL, find_chunks

from test_plugin import run_pytest  # tests/ is on sys.path (rootdir-relative test modules)

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(find_chunks() is None, reason=f"Gemma 3 270M not installed ({INSTALL})")]


def test_single_edit_suite_on_gemma3(tmp_path):
    reports = tmp_path / "reports"
    r = run_pytest("suites", "-m", "single", "--model", "gemma3-270m", "--editor", "null", "--editor", "rome",
                   "--n-records", "5", "--reports-dir", str(reports), timeout=3600)
    out = r.stdout[-4000:] + r.stderr[-2000:]
    assert r.returncode == 0, out
    (payload,) = [json.loads(f.read_text()) for f in reports.glob("editbench-*.json")]
    results = {res["provenance"]["editor"]["name"]: res for res in payload["results"]}
    assert set(results) == {"null", "rome"}, out
    rome = results["rome"]["provenance"]["editor"]
    assert rome["preset"]["kind"] == "derived" and rome["preset"]["section"] == "gemma3-270m"  # never GPT-2-XL's 17
    for name, res in results.items():
        assert res["provenance"]["model"]["id"] == "gemma3-270m"
        assert all(rec["restored"] for rec in res["details"]["per_record"]), name


def test_single_edit_suite_on_a_local_copy_of_gemma3(tmp_path):
    """The same with `--model DIR`, DIR the built-in saved by save_pretrained: recognised by its model hash
    (editbench.models.twins), it gets gemma3-270m's derived presets, not a fresh trace, and says so."""
    from editbench.models.loader import load_model

    lm = load_model("gemma3-270m")  # records the built-in's hashes in the twins index
    local = tmp_path / "gemma-local"
    lm.model.save_pretrained(local)
    lm.tok.save_pretrained(local)
    del lm
    reports = tmp_path / "reports"
    r = run_pytest("suites", "-m", "single", "--model", str(local), "--editor", "null", "--editor", "rome",
                   "--n-records", "5", "--reports-dir", str(reports), timeout=3600)
    out = r.stdout[-4000:] + r.stderr[-2000:]
    assert r.returncode == 0, out
    assert "deriving its edit layers" not in out
    (payload,) = [json.loads(f.read_text()) for f in reports.glob("editbench-*.json")]
    results = {res["provenance"]["editor"]["name"]: res for res in payload["results"]}
    assert set(results) == {"null", "rome"}, out
    preset = results["rome"]["provenance"]["editor"]["preset"]
    assert preset["kind"] == "derived" and preset["section"] == "gemma3-270m" and "matched_by" in preset
    assert results["rome"]["provenance"]["model"]["same_weights_as"] == "gemma3-270m"
