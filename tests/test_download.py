"""The verified CounterFact download, against a real HTTP server on 127.0.0.1 (no outside network)."""
from __future__ import annotations

import hashlib
import json
import warnings

import pytest
from local_http import QuietHandler, serving  # tests/ is on sys.path

import editbench.data.download as dl
from editbench.data import (ChecksumError, DownloadError, UnverifiedDownloadWarning, download_counterfact,
                            download_file, load_records)

# trust on first use warns (tested below); the other tests are about other things
pytestmark = pytest.mark.filterwarnings("ignore::editbench.data.download.UnverifiedDownloadWarning")


def rome_records(n: int) -> list[dict]:
    """A small generated file in ROME's counterfact.json format."""
    return [{"case_id": i, "pararel_idx": 100 + i,
             "requested_rewrite": {"prompt": "{} is a citizen of", "relation_id": "P27", "subject": f"Person {i}",
                                   "target_new": {"str": "Italy", "id": "Q38"},
                                   "target_true": {"str": "France", "id": "Q142"}},
             "paraphrase_prompts": [f"Some text. Person {i} holds a passport from"],
             "neighborhood_prompts": [f"Person {i + 100} is a citizen of"],
             "attribute_prompts": [f"Person {i + 200} is a citizen of"],
             "generation_prompts": [f"Person {i} lives in"]} for i in range(n)]


BODY = json.dumps(rome_records(7)).encode()
SHA = hashlib.sha256(BODY).hexdigest()


class Handler(QuietHandler):
    """``/counterfact.json``: the file; ``/short.json``: promises more bytes than it sends; else 404."""

    hits: list[str] = []
    short_failures = 0  # serve /flaky.json short this many times, then the whole file

    def do_GET(self):
        Handler.hits.append(self.path)
        if self.path == "/flaky.json" and Handler.short_failures > 0:
            Handler.short_failures -= 1
            self.send_body(BODY[:100], length=len(BODY))
        elif self.path in ("/counterfact.json", "/flaky.json"):
            self.send_body(BODY)
        elif self.path == "/short.json":
            self.send_body(BODY[:100], length=len(BODY))
        else:
            self.send_error(404)


@pytest.fixture(scope="module")
def server():
    with serving(Handler) as url:
        yield url


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("EDITBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(dl.time, "sleep", lambda s: None)  # no real back-off pauses in tests
    Handler.hits = []


def test_default_url_is_romes_data_host():
    assert dl.COUNTERFACT_URL == "https://rome.baulab.info/data/dsets/counterfact.json"


def test_download_then_parse(server, tmp_path):
    path = download_counterfact(f"{server}/counterfact.json", progress=False)
    assert path == tmp_path / "cache" / "counterfact.json" and path.read_bytes() == BODY
    assert (tmp_path / "cache" / "counterfact.json.sha256").read_text().split()[0] == SHA  # recorded on first use
    recs = load_records(path)
    assert [r.case_id for r in recs] == [str(i) for i in range(7)]
    assert recs[3].rewrite_prompt == "Person 3 is a citizen of" and recs[3].meta["format"] == "rome"
    assert Handler.hits == ["/counterfact.json"]


def test_registry_name_downloads_to_cache(server, monkeypatch):
    monkeypatch.setattr(dl, "COUNTERFACT_URL", f"{server}/counterfact.json")
    monkeypatch.delenv("HF_HUB_OFFLINE")  # implicit downloads on first use are off when offline (next test)
    recs = load_records("counterfact-full", n=3, seed=0)
    assert len(recs) == 3 and all(r.target_new == "Italy" for r in recs)
    monkeypatch.setenv("EDITBENCH_OFFLINE", "1")
    assert len(load_records("counterfact-full")) == 7  # the cached copy is used offline too
    assert Handler.hits == ["/counterfact.json"]  # the second load used the cache


@pytest.mark.parametrize("flag", ["HF_HUB_OFFLINE", "EDITBENCH_OFFLINE"])
def test_registry_name_offline_is_one_line_naming_the_fetch(server, monkeypatch, flag):
    from editbench.data.sources import DataNotAvailable

    monkeypatch.setattr(dl, "COUNTERFACT_URL", f"{server}/counterfact.json")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv(flag, "1")
    with pytest.raises(DataNotAvailable) as ei:
        load_records("counterfact-full")
    assert "\n" not in str(ei.value) and "editbench data fetch counterfact-full" in str(ei.value)
    assert Handler.hits == []


def test_explicit_hash_accepted(server, tmp_path):
    path = download_file(f"{server}/counterfact.json", tmp_path / "d" / "cf.json", sha256=SHA.upper(), progress=False)
    assert path.read_bytes() == BODY


def test_hash_mismatch_raises_and_leaves_nothing(server, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError, match="expected 0000"):
        download_counterfact(f"{server}/counterfact.json", sha256="0" * 64, progress=False)
    assert list(cache.iterdir()) == []  # no partial file, no destination, no sidecar
    assert Handler.hits == ["/counterfact.json"]  # a checksum mismatch is not retried


def test_cached_file_reused_without_a_request(server):
    first = download_counterfact(f"{server}/counterfact.json", progress=False)
    second = download_counterfact(f"{server}/counterfact.json", progress=False)
    assert first == second and Handler.hits == ["/counterfact.json"]
    third = download_counterfact(f"{server}/counterfact.json", progress=False, force=True)
    assert third.read_bytes() == BODY and len(Handler.hits) == 2


def test_tampered_cache_detected_by_sidecar(server):
    path = download_counterfact(f"{server}/counterfact.json", progress=False)
    path.write_bytes(BODY.replace(b"Italy", b"Spain"))
    with pytest.raises(ChecksumError, match="cached"):
        download_counterfact(f"{server}/counterfact.json", progress=False)
    assert Handler.hits == ["/counterfact.json"]


def test_short_body_is_an_error_and_leaves_nothing(server, tmp_path):
    with pytest.raises(DownloadError, match="Content-Length"):
        download_file(f"{server}/short.json", tmp_path / "d" / "cf.json", retries=1, progress=False)
    assert list((tmp_path / "d").iterdir()) == []
    assert Handler.hits == ["/short.json"] * 2  # retried once


def test_retry_recovers_from_a_short_body(server, tmp_path):
    Handler.short_failures = 1
    path = download_file(f"{server}/flaky.json", tmp_path / "d" / "cf.json", retries=2, progress=False)
    assert path.read_bytes() == BODY and Handler.hits == ["/flaky.json"] * 2


def test_http_error_not_retried(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_file(f"{server}/missing.json", tmp_path / "d" / "cf.json", retries=3, progress=False)
    assert list((tmp_path / "d").iterdir()) == [] and Handler.hits == ["/missing.json"]


def test_redownload_verified_against_recorded_sidecar(server, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "counterfact.json.sha256").write_text("f" * 64 + "  counterfact.json\n")  # recorded earlier
    with pytest.raises(ChecksumError, match="expected ffff"):
        download_counterfact(f"{server}/counterfact.json", progress=False)
    assert sorted(p.name for p in cache.iterdir()) == ["counterfact.json.sha256"]


# --- trust on first use is loud; sidecars are checked (issue "Bad input and faults") -------------------------

def test_unpinned_first_download_warns_naming_file_and_hash(server, tmp_path):
    with pytest.warns(UnverifiedDownloadWarning, match=SHA) as rec:
        path = download_counterfact(f"{server}/counterfact.json", progress=False)
    msg = str(rec[0].message)
    assert str(path) in msg and "NO expected sha256" in msg and "counterfact.json.sha256" in msg
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second use is verified against the recorded hash: no warning
        download_counterfact(f"{server}/counterfact.json", progress=False)


def test_planted_cache_file_warns(server, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    planted = BODY.replace(b"Italy", b"Spain")
    (cache / "counterfact.json").write_bytes(planted)  # no sidecar, no pin: nothing to check it against
    with pytest.warns(UnverifiedDownloadWarning, match="already in the cache") as rec:
        download_counterfact(f"{server}/counterfact.json", progress=False)
    assert hashlib.sha256(planted).hexdigest() in str(rec[0].message) and Handler.hits == []


def test_pinned_hash_does_not_warn(server, tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "COUNTERFACT_SHA256", SHA)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = download_counterfact(f"{server}/counterfact.json", progress=False)
    assert path.read_bytes() == BODY


@pytest.mark.parametrize("content,match", [("", "is empty"), ("\n  \n", "is empty"),
                                           ("not-a-hash  counterfact.json\n", "garbled"),
                                           ("abc123  counterfact.json\n", "garbled")])
@pytest.mark.parametrize("cached", [False, True])
def test_empty_or_garbled_sidecar_is_a_checksum_error(server, tmp_path, content, match, cached):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "counterfact.json.sha256").write_text(content)  # was an IndexError (empty) or a wrong "hash"
    if cached:
        (cache / "counterfact.json").write_bytes(BODY)
    with pytest.raises(ChecksumError, match=match) as ei:
        download_counterfact(f"{server}/counterfact.json", progress=False)
    assert "counterfact.json.sha256" in str(ei.value) and Handler.hits == []


def test_non_ascii_sidecar_is_a_checksum_error(server, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "counterfact.json.sha256").write_bytes(b"\xff\xfe")
    with pytest.raises(ChecksumError, match="cannot be read"):
        download_counterfact(f"{server}/counterfact.json", progress=False)


def test_malformed_explicit_hash_is_a_value_error(server, tmp_path):
    with pytest.raises(ValueError, match="64 hex digits"):
        download_file(f"{server}/counterfact.json", tmp_path / "d" / "cf.json", sha256="abc", progress=False)
    assert Handler.hits == []


@pytest.mark.parametrize("tty,progress,drawn", [(True, True, True), (False, True, False), (True, False, False)])
def test_progress_bar_on_a_terminal_only(server, tmp_path, monkeypatch, tty, progress, drawn):
    """pooch draws the bar (tqdm) only when asked for and stderr is a terminal (no bar in CI logs)."""
    seen = []
    real = dl.pooch.HTTPDownloader

    def spy(**kw):
        seen.append(kw["progressbar"])
        return real(**{**kw, "progressbar": False})
    monkeypatch.setattr(dl.pooch, "HTTPDownloader", spy)
    monkeypatch.setattr(dl.sys.stderr, "isatty", lambda: tty, raising=False)
    download_file(f"{server}/counterfact.json", tmp_path / "d" / "cf.json", sha256=SHA, progress=progress)
    assert seen == [drawn]
