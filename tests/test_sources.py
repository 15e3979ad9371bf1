"""Data from the original sources (editbench/data/sources.py): resolution order, first-use download into the cache,
checksums, interruptions, offline errors and ``editbench data fetch`` -- against a real HTTP server on 127.0.0.1
(no outside network). The last tests check the real table against the shared mirror when it is here."""
from __future__ import annotations

import hashlib
import json
import socket
import warnings
from pathlib import Path

import pytest
from local_http import QuietHandler, serving  # tests/ is on sys.path

import editbench.data.download as dl
import editbench.data.sources as src
from editbench import cli
from editbench.data import (ChecksumError, DownloadError, UnverifiedDownloadWarning, load_edit_orders, load_known,
                            load_records)
from editbench.data.sources import SOURCES, DataNotAvailable, Source, first_records, locate
from editbench.runner.checks import check_dataset
from editbench.runner.experiment import ExperimentError

CF_FILE = "counterfact/counterfact-edit.json"
ZSRE_FILE = "zsre/zsre_mend_eval_first414.json"


def easy(i: int) -> dict:
    return {"case_id": i, "prompt": f"The mother tongue of Person {i} is", "target_new": "English",
            "subject": f"Person {i}", "ground_truth": "French",
            "rephrase_prompt": f"Where Person {i} is from, people speak the language of",
            "locality_prompt": "Michel Rocard is a native speaker of", "locality_ground_truth": "French"}


def zsre(i: int) -> dict:
    return {"subject": f"Place {i}", "src": f"Which country is Place {i} in?", "pred": "France", "rephrase":
            f"Place {i} is in which country?", "alt": "Italy", "answers": ["France"], "loc": "nq question: x",
            "loc_ans": "y", "cond": "France >> Italy || q"}


BODY = json.dumps([easy(i) for i in range(6)]).encode()
SHA = hashlib.sha256(BODY).hexdigest()
UPSTREAM = json.dumps([zsre(i) for i in range(9)]).encode()  # a "published" file; the dataset is its first 4
DERIVED = json.dumps([zsre(i) for i in range(4)]).encode()
DERIVED_SHA = hashlib.sha256(DERIVED).hexdigest()


class Handler(QuietHandler):
    """``/cf.json``, ``/zsre_eval.json``: files; ``/cut.json``: the file, but the first ``cuts`` responses are
    cut off mid-body (connection closed); ``/bad.json``: other bytes; anything else: 404."""

    hits: list[str] = []
    cuts = 0

    def do_GET(self):
        Handler.hits.append(self.path)
        if self.path == "/cut.json" and Handler.cuts > 0:
            Handler.cuts -= 1
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY[: len(BODY) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)  # the connection drops mid-body
            self.close_connection = True
        elif self.path in ("/cf.json", "/cut.json"):
            self.send_body(BODY)
        elif self.path == "/zsre_eval.json":
            self.send_body(UPSTREAM)
        elif self.path == "/bad.json":
            self.send_body(BODY.replace(b"English", b"Spanish"))
        else:
            self.send_error(404)


@pytest.fixture(scope="module")
def server():
    with serving(Handler) as url:
        yield url


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A fresh clone's view: an empty local mirror, an empty cache, downloads allowed, no back-off pauses."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    monkeypatch.setenv("EDITBENCH_DATA_DIR", str(mirror))
    monkeypatch.setenv("EDITBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("EDITBENCH_OFFLINE", raising=False)
    monkeypatch.setattr(dl.time, "sleep", lambda s: None)
    Handler.hits = []
    Handler.cuts = 0
    return tmp_path


def pin(monkeypatch, name: str, file: str, urls: tuple[str, ...], sha256: str | None, **kw) -> Source:
    s = Source(name, file, urls, sha256, "test source", **kw)
    monkeypatch.setitem(SOURCES, name, s)
    return s


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


def test_first_use_downloads_into_the_cache_then_reads_it_without_a_request(server, env, monkeypatch):
    pin(monkeypatch, "counterfact", CF_FILE, (f"{server}/cf.json",), SHA)
    recs = load_records("counterfact", n=3, seed=0)
    assert len(recs) == 3 and all(r.target_new == "English" for r in recs)
    cached = env / "cache" / "data" / CF_FILE  # the mirror layout under <cache_root>/data
    assert cached.read_bytes() == BODY and Handler.hits == ["/cf.json"]
    assert [p.name for p in files_under(cached.parent)] == ["counterfact-edit.json", "counterfact-edit.json.sha256"]
    assert len(load_records("counterfact")) == 6 and locate(CF_FILE) == cached
    assert Handler.hits == ["/cf.json"]  # second and third use: the cache, no request


def test_wrong_bytes_are_a_checksum_error_and_leave_no_file(server, env, monkeypatch):
    pin(monkeypatch, "counterfact", CF_FILE, (f"{server}/bad.json",), SHA)
    with pytest.raises(ChecksumError, match=f"expected {SHA}"):
        locate(CF_FILE, progress=False)
    assert files_under(env / "cache") == [] and Handler.hits == ["/bad.json"]  # not retried, nothing left


def test_tampered_cache_file_is_a_checksum_error(server, env, monkeypatch):
    pin(monkeypatch, "counterfact", CF_FILE, (f"{server}/cf.json",), SHA)
    path = locate(CF_FILE, progress=False)
    path.write_bytes(BODY.replace(b"English", b"Spanish"))
    with pytest.raises(ChecksumError, match="cached"):
        load_records("counterfact")


def test_interrupted_download_leaves_no_partial_file_and_a_retry_succeeds(server, env, monkeypatch):
    pin(monkeypatch, "counterfact", CF_FILE, (f"{server}/cut.json",), SHA)
    Handler.cuts = 1
    with pytest.raises(DownloadError) as ei:
        src.fetch("counterfact", retries=0, progress=False)
    assert not isinstance(ei.value, ChecksumError) and "cut.json" in str(ei.value)
    assert files_under(env / "cache") == []  # no .part file, no destination, no sidecar
    assert src.fetch("counterfact", retries=0, progress=False).read_bytes() == BODY  # the user's retry
    Handler.cuts, Handler.hits = 1, []
    (env / "cache" / "data" / CF_FILE).unlink()
    assert src.fetch("counterfact", retries=1, progress=False).read_bytes() == BODY  # the built-in retry
    assert Handler.hits == ["/cut.json"] * 2


def test_data_dir_takes_precedence_over_cache_and_download(server, env, monkeypatch):
    pin(monkeypatch, "counterfact", CF_FILE, (f"{server}/cf.json",), SHA)
    locate(CF_FILE, progress=False)  # a cached copy exists too
    mirror = env / "mirror"
    (mirror / "counterfact").mkdir()
    (mirror / CF_FILE).write_text(json.dumps([easy(40), easy(41)]))  # a local copy: read as it is, not hashed
    Handler.hits = []
    assert locate(CF_FILE) == mirror / CF_FILE
    assert [r.case_id for r in load_records("counterfact")] == ["40", "41"] and Handler.hits == []


def test_a_data_dir_that_is_not_a_directory_is_an_error(env, monkeypatch):
    monkeypatch.setenv("EDITBENCH_DATA_DIR", str(env / "missing"))
    with pytest.raises(FileNotFoundError, match="EDITBENCH_DATA_DIR"):
        locate(CF_FILE)
    with pytest.raises(ExperimentError, match="EDITBENCH_DATA_DIR"):
        check_dataset("counterfact", "tiny-gpt2")


@pytest.mark.parametrize("flag", ["EDITBENCH_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_with_nothing_here_is_a_one_line_usage_error(server, env, monkeypatch, flag):
    pin(monkeypatch, "counterfact", CF_FILE, (f"{server}/cf.json",), SHA)
    monkeypatch.setenv(flag, "1")
    with pytest.raises(DataNotAvailable) as ei:
        load_records("counterfact")
    assert isinstance(ei.value, FileNotFoundError) and f"{flag} is set" in str(ei.value)
    with pytest.raises(ExperimentError) as ei:
        check_dataset("counterfact", "tiny-gpt2")
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith("--dataset 'counterfact': ")
    assert "run `editbench data fetch counterfact` on a machine with network, or set EDITBENCH_DATA_DIR" in msg
    assert Handler.hits == []  # offline means no request at all


def test_offline_counterfact_full_is_a_one_line_usage_error(env, monkeypatch):
    monkeypatch.setenv("EDITBENCH_OFFLINE", "1")
    with pytest.raises(ExperimentError) as ei:
        check_dataset("counterfact-full", "tiny-gpt2")
    msg = str(ei.value)
    assert "\n" not in msg and "editbench data fetch counterfact-full" in msg and "counterfact.json" in msg


def test_failed_download_is_a_one_line_usage_error(server, env, monkeypatch):
    pin(monkeypatch, "counterfact", CF_FILE, (f"{server}/gone.json",), SHA)
    with pytest.raises(ExperimentError) as ei:
        check_dataset("counterfact", "tiny-gpt2")
    msg = str(ei.value)
    assert "\n" not in msg and "HTTP 404" in msg and "editbench data fetch counterfact" in msg
    assert files_under(env / "cache") == []


def test_next_url_is_tried_when_one_fails(server, env, monkeypatch):
    pin(monkeypatch, "counterfact", CF_FILE, (f"{server}/gone.json", f"{server}/cf.json"), SHA)
    assert src.fetch("counterfact", progress=False).read_bytes() == BODY
    assert Handler.hits == ["/gone.json", "/cf.json"]


def test_wrong_bytes_from_every_url_is_the_checksum_error(server, env, monkeypatch):
    pin(monkeypatch, "counterfact", CF_FILE, (f"{server}/bad.json", f"{server}/gone.json"), SHA)
    with pytest.raises(ChecksumError):
        src.fetch("counterfact", progress=False)
    assert files_under(env / "cache") == []


def test_derived_file_written_under_the_mirror_path(server, env, monkeypatch):
    pin(monkeypatch, "zsre", ZSRE_FILE, (f"{server}/zsre_eval.json",), DERIVED_SHA, transform=first_records(4))
    with pytest.warns(UnverifiedDownloadWarning, match="zsre_eval.json"):  # the published file: trust on first use
        recs = load_records("zsre")
    assert [r.subject for r in recs] == [f"Place {i}" for i in range(4)]
    derived = env / "cache" / "data" / ZSRE_FILE
    assert derived.read_bytes() == DERIVED
    assert (env / "cache" / "data" / "upstream" / "zsre_eval.json").read_bytes() == UPSTREAM
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_records("zsre")) == 4 and src.fetch("zsre", progress=False) == derived
    assert Handler.hits == ["/zsre_eval.json"]


def test_derived_file_with_another_hash_is_a_checksum_error(server, env, monkeypatch):
    pin(monkeypatch, "zsre", ZSRE_FILE, (f"{server}/zsre_eval.json",), "0" * 64, transform=first_records(4))
    with pytest.warns(UnverifiedDownloadWarning), pytest.raises(ChecksumError, match="derived from"):
        src.fetch("zsre", progress=False)
    assert not (env / "cache" / "data" / ZSRE_FILE).exists()
    assert not [p for p in files_under(env / "cache") if p.name.endswith(".part")]


def test_known_1000_and_edit_orders_resolve_the_same_way(server, env, monkeypatch):
    known = [{"known_id": 0, "subject": "Vinson Massif", "attribute": "Antarctica",
              "template": "{} is located in the continent", "prediction": " of Antarctica",
              "prompt": "Vinson Massif is located in the continent of", "relation_id": "P30"}]
    (env / "mirror" / "counterfact").mkdir()
    (env / "mirror" / "counterfact" / "known_1000.json").write_text(json.dumps(known))
    assert [k.subject for k in load_known()] == ["Vinson Massif"]
    monkeypatch.setenv("EDITBENCH_OFFLINE", "1")
    with pytest.raises(DataNotAvailable, match="editbench data fetch edit-orders"):
        load_edit_orders()


def test_glue_sets_have_no_public_source_and_are_not_substituted(env, capsys):
    for task in ("sst2", "mrpc", "cola", "rte"):
        s = SOURCES[task]
        assert not s.public and s.sha256 and "unbalanced" in s.fallback and "not substituted" in s.fallback
        with pytest.raises(DataNotAvailable, match="no public source of the balanced set; "):
            src.fetch(task)
        with pytest.raises(DataNotAvailable, match=f'load_dataset\\("glue", "{task}", split="validation"\\)'):
            locate(s.file)
    assert cli.main(["data", "fetch", "sst2"]) == 1
    assert "no public source of the balanced set; " in capsys.readouterr().err


def test_cli_fetch_prints_path_and_hash_then_list_shows_it(server, env, monkeypatch, capsys):
    pin(monkeypatch, "counterfact", CF_FILE, (f"{server}/cf.json",), SHA)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # an explicit fetch downloads anyway
    assert cli.main(["data", "fetch", "--quiet", "counterfact"]) == 0
    out = capsys.readouterr().out
    assert str(env / "cache" / "data" / CF_FILE) in out and f"sha256 {SHA}" in out
    assert cli.main(["data", "fetch", "--list"]) == 0
    out = capsys.readouterr().out
    assert f"present: {env / 'cache' / 'data' / CF_FILE}" in out and f"sha256 {SHA} (pinned)" in out
    assert "counterfact-1k   absent" in out and "no public source of the balanced set" in out
    assert cli.main(["data", "fetch", "countrefact"]) == 4
    assert "'counterfact'" in capsys.readouterr().err  # did you mean


def test_cli_fetch_default_is_every_public_source(server, env, monkeypatch, capsys):
    for name in list(SOURCES):
        monkeypatch.delitem(SOURCES, name)
    pin(monkeypatch, "counterfact", CF_FILE, (f"{server}/cf.json",), SHA)
    pin(monkeypatch, "sst2", "glue/sst2_eval_balanced.json", (), "1" * 64, fallback="x")
    assert cli.main(["data", "fetch", "--quiet"]) == 0  # sst2 has no public source: not fetched by default
    assert Handler.hits == ["/cf.json"] and "counterfact" in capsys.readouterr().out


# --- the real table -------------------------------------------------------------------------------------------

def test_table_names_the_original_sources():
    assert SOURCES["counterfact"].urls == (
        "https://raw.githubusercontent.com/Jometeorie/KnowledgeSpread/main/data/counterfact/counterfact-edit.json",)
    assert SOURCES["counterfact-1k"].urls[0].endswith("/KnowledgeSpread/main/data/counterfact/counterfact-edit-1k.json")
    assert SOURCES["zsre-train"].urls[0].endswith("/KnowledgeSpread/main/data/zsre/zsre_mend_train-1k.json")
    rome = "https://raw.githubusercontent.com/kmeng01/rome/448f8fe556cf267e0b71d02a9f3b4dec9858ec58"
    assert SOURCES["known_1000"].urls == (f"{rome}/counterfact/compiled/known_1000.json",
                                          "https://rome.baulab.info/data/dsets/known_1000.json")
    assert SOURCES["zsre"].urls == ("https://rome.baulab.info/data/dsets/zsre_mend_eval.json",)
    assert SOURCES["zsre"].upstream_sha256 is None and SOURCES["zsre"].transform is not None
    assert "unified-model-editing" in SOURCES["edit-orders"].urls[0]
    assert SOURCES["counterfact-full"].urls == (dl.COUNTERFACT_URL,)
    from editbench.data.registry import DATASETS, EDIT_ORDERS_FILE, KNOWN_FILE
    from editbench.data.tasks import TASKSETS
    files = {s.file for s in SOURCES.values()}
    assert {d.file for d in DATASETS.values() if d.file} | {KNOWN_FILE, EDIT_ORDERS_FILE} <= files
    assert {t.file for t in TASKSETS.values()} <= files
    assert all(s.sha256 for s in SOURCES.values() if s.file)  # every mirror-layout file is pinned


def shared_mirror() -> Path | None:
    return next((p.resolve() for p in src.mirror_candidates() if p.is_dir()), None)


@pytest.mark.parametrize("name", [n for n, s in SOURCES.items() if s.file])
def test_shared_mirror_files_match_their_pinned_hashes(name):
    base = shared_mirror()
    s = SOURCES[name]
    if base is None or not (base / s.file).is_file():
        pytest.skip(f"shared data mirror ({s.file}) not here")
    assert dl.sha256_file(base / s.file) == s.sha256


def test_zsre_transform_reproduces_the_mirror_bytes():
    """The derived file is written as the mirror's was (json.dumps defaults), so the pinned hash can hold."""
    base = shared_mirror()
    if base is None or not (base / ZSRE_FILE).is_file():
        pytest.skip("shared data mirror (zsre) not here")
    assert hashlib.sha256(first_records(414)(base / ZSRE_FILE)).hexdigest() == SOURCES["zsre"].sha256
