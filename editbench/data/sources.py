"""Where each data file comes from, and how a named file is found (or fetched) on this machine.

Every file the package reads by name has a row in :data:`SOURCES`: its path in the mirror layout (the layout of
``../shared/data``, e.g. ``counterfact/counterfact-edit.json``), the URL(s) of the original publication, its
sha256 where known, and -- for a derived file -- the transform from the published file. ``fetch(name)``
downloads it; :func:`locate` is what the loaders call.

**Resolution order** of a file (:func:`locate`):

1. the local mirror: ``$EDITBENCH_DATA_DIR`` if set (it then *replaces* the next one; a value that is not a
   directory is an error), else the first that exists of ``<cwd>/../shared/data`` and
   ``<repo root>/../shared/data``. Mirror files are read as they are (a mirror may hold edited copies);
   ``tests/test_sources.py`` checks the shared mirror against the pinned hashes;
2. the download cache, ``<cache_root>/data/<mirror path>`` (``$EDITBENCH_CACHE``, default
   ``~/.cache/editbench``), verified at every use against the pinned sha256 (else the recorded sidecar);
3. on first use, a download into that cache (:func:`editbench.data.download.download_file`: pooch, progress
   bar on a terminal, sha256 checked where pinned, atomic rename) -- unless downloads are off:
   ``EDITBENCH_OFFLINE=1`` (or ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``; the one switch,
   :func:`editbench.models.cache.offline`). Then, or for a file with no public
   source, :class:`DataNotAvailable` (a :class:`~editbench.data.schema.DatasetFileMissing`) says in one line
   what to fetch or set. A failed download raises :class:`~editbench.data.download.DownloadError` (a
   :class:`~editbench.data.download.ChecksumError` for wrong bytes) and leaves no file behind.

``editbench data fetch [NAME ...]`` is the explicit pre-fetch for offline machines; it downloads whatever the
offline flags say (they only stop *implicit* downloads on first use).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from editbench.data.download import (COUNTERFACT_URL, ChecksumError, DownloadError, cache_dir, download_counterfact,
                                     download_file, verify_file)
from editbench.data.schema import DatasetFileMissing
from editbench.models.cache import offline, offline_flag
from editbench.suggest import close_matches, did_you_mean

REPO_ROOT = Path(__file__).resolve().parents[2]
REMOTE_ROOT_URL = "https://rome.baulab.info"  # ROME's data host (rome/util/globals.yml REMOTE_ROOT_URL)
KNOWLEDGE_SPREAD = "https://raw.githubusercontent.com/Jometeorie/KnowledgeSpread/main/data"
ROME_COMMIT = "448f8fe556cf267e0b71d02a9f3b4dec9858ec58"  # kmeng01/rome, first commit
ROME_RAW = f"https://raw.githubusercontent.com/kmeng01/rome/{ROME_COMMIT}"
UME_COMMIT = "cf1907fc3e90c87ff9724c3fd750b290658a3f97"  # scalable-model-editing/unified-model-editing
UME_RAW = f"https://raw.githubusercontent.com/scalable-model-editing/unified-model-editing/{UME_COMMIT}/data"
ZSRE_EVAL_FIRST = 414
GLUE_FALLBACK = ('datasets.load_dataset("glue", "{task}", split="validation") is the public GLUE dev set, a '
                 'different (unbalanced) set, and is not substituted')


def first_records(n: int) -> Callable[[Path], bytes]:
    """The transform "the first ``n`` records of a JSON list", serialised as ``json.dumps`` does by default (the
    serialisation of the mirror's ``zsre_mend_eval_first414.json``, so the pinned hash can be checked)."""
    def transform(path: Path) -> bytes:
        data = json.loads(Path(path).read_bytes().decode("utf-8-sig"))
        if not isinstance(data, list) or len(data) < n:
            got = f"{len(data):,} records" if isinstance(data, list) else type(data).__name__
            raise DownloadError(f"{path}: expected a JSON list of at least {n:,} records, got {got}")
        return json.dumps(data[:n]).encode()
    transform.__doc__ = f"first {n:,} records"
    return transform


@dataclass(frozen=True)
class Source:
    """One data file: its mirror path, where it is published, and how to check it."""

    name: str                       # what `editbench data fetch NAME` takes (a dataset or task-set name)
    file: str | None                # path in the mirror layout (None: counterfact-full, cached by download.py)
    urls: tuple[str, ...] = ()      # tried in order; empty = no public source
    sha256: str | None = None       # of the stored file (after the transform); None = trust on first use, warned
    origin: str = ""                # where it comes from, in words
    transform: Callable[[Path], bytes] | None = None  # published file -> bytes of the stored file
    upstream_sha256: str | None = None  # of the published file of a derived one; None = trust on first use
    fallback: str = ""              # no public source: what exists instead

    @property
    def public(self) -> bool:
        return bool(self.urls)


SOURCES: dict[str, Source] = {s.name: s for s in [
    Source("counterfact", "counterfact/counterfact-edit.json",
           (f"{KNOWLEDGE_SPREAD}/counterfact/counterfact-edit.json",),
           "bfe31a7081932739406e282bb625d74222549c3386c15b1df3dfbc3978c69eec",
           "Jometeorie/KnowledgeSpread data/counterfact/ (EasyEdit-format CounterFact, 10,000 cases)"),
    Source("counterfact-1k", "counterfact/counterfact-edit-1k.json",
           (f"{KNOWLEDGE_SPREAD}/counterfact/counterfact-edit-1k.json",),
           "a76ca148f3d7214d2939aaa023da12f400770898de1d6bb45ba8b04cf2d88db7",
           "Jometeorie/KnowledgeSpread data/counterfact/ (1,000 cases)"),
    Source("counterfact-full", None, (COUNTERFACT_URL,), None,
           "ROME's data host (ROME-format CounterFact, 21,919 cases; kept as <cache>/counterfact.json)"),
    Source("zsre", "zsre/zsre_mend_eval_first414.json", (f"{REMOTE_ROOT_URL}/data/dsets/zsre_mend_eval.json",),
           "74aed8e319111856a21dd46528a2331c92d746020b05ad0e8c8d14235d4058fb",
           f"the first {ZSRE_EVAL_FIRST} records of MEND's zsre_mend_eval.json, from ROME's data host",
           transform=first_records(ZSRE_EVAL_FIRST)),
    Source("zsre-train", "zsre/zsre_mend_train-1k.json", (f"{KNOWLEDGE_SPREAD}/zsre/zsre_mend_train-1k.json",),
           "e62596101d8ed551889c26c0d2a5277f92eaef3b14416d8eaee39b04a244ab60",
           "Jometeorie/KnowledgeSpread data/zsre/ (MEND-format zsRE, 1,000 train records)"),
    Source("known_1000", "counterfact/known_1000.json",
           (f"{ROME_RAW}/counterfact/compiled/known_1000.json", f"{REMOTE_ROOT_URL}/data/dsets/known_1000.json"),
           "61daca55318bb5260c1e62e133debef9102c7b278bbc7b19dd2ac655543f333a",
           f"kmeng01/rome@{ROME_COMMIT[:7]} counterfact/compiled/ (also on ROME's data host)"),
    Source("edit-orders", "counterfact/counterfact_sampled_unique_cf_10_20000.json",
           (f"{UME_RAW}/counterfact_sampled_unique_cf_10_20000.json",),
           "dcecf276656879f2862cd513b587f658fa1e1b0b9bae09890ddfb2f718811870",
           "scalable-model-editing/unified-model-editing data/ (the seed paper's 10 edit orders)"),
    # zsRE-vs-completion transfer suite (editbench/suites/zsre/pairs.py): the seed paper's question/completion pairs
    Source("zsre-completion", "zsre/zsre_text_completion_prompts.json",
           (f"{UME_RAW}/zsre_text_completion_prompts.json",),
           "2be493f1eb7fcf9b06ab4446cbbf527c2759385e97b54423ac55482f2a1fd7c7",
           "scalable-model-editing/unified-model-editing data/ (280 zsRE question -> completion prompt pairs; "
           "case_index i = record i of the zsre eval file)"),
    Source("counterfact-qna", "counterfact/counterfact_qna.json", (f"{UME_RAW}/counterfact_qna.json",),
           "ccfb732fcb886b106fe2e16860b0c3e64ca0d263d479106977447a2d674658c7",
           "scalable-model-editing/unified-model-editing data/ (1,000 CounterFact completion prompts with a "
           "question form)"),
    *[Source(task, f"glue/{task}_eval_balanced.json", (), sha,
             f"balanced {label} eval set of the seed paper's code (converted from the authors' pickles)",
             fallback=GLUE_FALLBACK.format(task=task))
      for task, label, sha in [
          ("sst2", "SST-2", "eea698d67d3740e7aea93f47a55b31ddfcd193268ffeee196b93f600cdb0ac3b"),
          ("mrpc", "MRPC", "0ae0d49452f7c6f84b5dee6f89278882c0658bc05e9285ec3cbb9f5cda568f87"),
          ("cola", "CoLA", "d98993daffdc59131cb0d649604cb06ee0d702434ef540c3b289fa25de9c25b8"),
          ("rte", "RTE", "8299b22413787a6def3f2650ea0cd209d15cdf8a7e561dd9ed38b3cb53e16060")]],
]}


def by_file(file: str) -> Source | None:
    """The source of a mirror path, or None."""
    return next((s for s in SOURCES.values() if s.file == file), None)


class DataNotAvailable(DatasetFileMissing):
    """A named file that is in no local copy and cannot be downloaded now (offline, or no public source)."""


class UnknownSourceError(ValueError):
    def __init__(self, name: str):
        self.name = name
        super().__init__(f"no data source {name!r}.{did_you_mean(close_matches(name, SOURCES))} "
                         f"Known: {', '.join(SOURCES)}")


def mirror_candidates() -> list[Path]:
    return [Path.cwd() / ".." / "shared" / "data", REPO_ROOT / ".." / "shared" / "data"]


def mirror_dir(required: bool = True) -> Path | None:
    """The local mirror: ``$EDITBENCH_DATA_DIR`` (FileNotFoundError if it is not a directory), else the first
    existing ``../shared/data``; FileNotFoundError saying where it looked (None if not ``required``)."""
    env = os.environ.get("EDITBENCH_DATA_DIR")
    if env:
        if not Path(env).is_dir():
            raise FileNotFoundError(f"EDITBENCH_DATA_DIR={env!r} is not a directory")
        return Path(env)
    tried = mirror_candidates()
    for p in tried:
        if p.is_dir():
            return p.resolve()
    if not required:
        return None
    raise FileNotFoundError(f"shared data directory not found (tried {', '.join(map(str, tried))}); "
                            "set EDITBENCH_DATA_DIR")


def data_cache() -> Path:
    """``<cache_root>/data``: downloaded files, in the mirror layout."""
    return cache_dir() / "data"


def cache_path(source: Source) -> Path:
    if source.file is None:  # counterfact-full: where download_counterfact keeps it
        return cache_dir() / "counterfact.json"
    return data_cache() / source.file


def _mirror_label() -> str:
    env = os.environ.get("EDITBENCH_DATA_DIR")
    return f"EDITBENCH_DATA_DIR={env}" if env else "../shared/data"


def _unavailable(source: Source | None, file: str, cached: Path, why: str) -> DataNotAvailable:
    name = source.name if source else file
    if source is not None and source.file is None:  # counterfact-full lives in the cache only
        return DataNotAvailable(file, f"not in the download cache ({cached}), and {why}: run `editbench data fetch "
                                      f"{name}` on a machine with network and copy the file there (EDITBENCH_CACHE "
                                      "sets the cache root)")
    return DataNotAvailable(file, f"not in the shared data mirror ({_mirror_label()}) or the download cache "
                                  f"({cached}), and {why}: run `editbench data fetch {name}` on a machine "
                                  f"with network, or set EDITBENCH_DATA_DIR to a directory holding it")


def no_public_source(source: Source) -> DataNotAvailable:
    return DataNotAvailable(source.file, f"no public source of the balanced set; {source.fallback}. Copy "
                                         f"{source.file} (sha256 {source.sha256}) from a machine with the shared "
                                         "data mirror and set EDITBENCH_DATA_DIR to the directory holding it")


def local_copy(source: Source) -> Path | None:
    """Where the file is on this machine without downloading (mirror, then cache), or None. No hashing."""
    base = mirror_dir(required=False)
    if source.file is not None and base is not None and (base / source.file).is_file():
        return base / source.file
    cached = cache_path(source)
    return cached if cached.is_file() else None


def _may_download(download: bool | None) -> tuple[bool, str]:
    if download is None:
        flag = offline_flag()
        return flag is None, f"downloads are off ({flag} is set)"
    return download, "downloads are off (download=False)"


def locate(file: str, *, download: bool | None = None, progress: bool = True) -> Path:
    """The local path of the mirror-layout ``file``, fetching it on first use (see the module docstring).

    ``download``: None = unless :func:`offline`; False = never; True = even when offline (``data fetch``)."""
    source = by_file(file)
    base = mirror_dir(required=False)
    if base is not None and (base / file).is_file():
        return base / file
    cached = data_cache() / file
    if cached.is_file():
        return verify_file(cached, source.sha256 if source else None)
    if source is None:
        raise _unavailable(None, file, cached, "editbench knows no public source of it")
    if not source.public:
        raise no_public_source(source)
    allowed, why = _may_download(download)
    if not allowed:
        raise _unavailable(source, file, cached, why)
    return fetch(source.name, progress=progress)


def obtain(name: str, *, download: bool | None = None, progress: bool = True) -> Path:
    """:func:`locate` by source name (``counterfact-full`` included: cached, else downloaded unless offline)."""
    source = SOURCES.get(name)
    if source is None:
        raise UnknownSourceError(name)
    if source.file is not None:
        return locate(source.file, download=download, progress=progress)
    cached = cache_path(source)
    allowed, why = _may_download(download)
    if not cached.is_file() and not allowed:
        raise _unavailable(source, cached.name, cached, why)
    return fetch(name, progress=progress)  # a cached file is verified without a request


def fetch(name: str, *, force: bool = False, progress: bool = True, timeout: float = 60.0, retries: int = 2) -> Path:
    """Download source ``name`` into the cache (verified, atomic) and return its path; a file already in the
    cache is verified and returned without a request (``force`` downloads again). Each URL is tried in turn;
    if none gives the file, the first :class:`ChecksumError` (wrong bytes somewhere) is raised, else the last
    :class:`DownloadError`. A source with no public URL is :class:`DataNotAvailable`."""
    source = SOURCES.get(name)
    if source is None:
        raise UnknownSourceError(name)
    if not source.public:
        raise no_public_source(source)
    kw = {"force": force, "progress": progress, "timeout": timeout, "retries": retries}
    if source.file is None:
        return download_counterfact(**kw)  # URL and hash read from download.py at call time
    dest = cache_path(source)
    if source.transform is not None and dest.is_file() and not force:
        return verify_file(dest, source.sha256)
    errors: list[DownloadError] = []
    for url in source.urls:
        try:
            if source.transform is None:
                return download_file(url, dest, source.sha256, **kw)
            return _derive(source, url, dest, **kw)
        except DownloadError as e:
            errors.append(e)
    raise next((e for e in errors if isinstance(e, ChecksumError)), errors[-1])


def upstream_path(url: str) -> Path:
    """Where the published file of a derived one is kept: ``<cache_root>/data/upstream/<its file name>``."""
    return data_cache() / "upstream" / url.rstrip("/").rsplit("/", 1)[-1]


def _derive(source: Source, url: str, dest: Path, **kw) -> Path:
    """Download the published file (kept, with its sidecar) and write the derived one atomically, verified."""
    raw = download_file(url, upstream_path(url), source.upstream_sha256, **kw)
    data = source.transform(raw)
    digest = hashlib.sha256(data).hexdigest()
    if source.sha256 is not None and digest != source.sha256:
        raise ChecksumError(f"{dest.name} derived from {url} ({source.transform.__doc__}) has sha256 {digest}, "
                            f"expected {source.sha256}: the published file differs from the one the mirror "
                            f"was made from (it is kept as {raw}; delete it to download it again)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def status(source: Source) -> dict:
    """For ``data fetch --list``: where the file is (or None), and whether its hash is pinned."""
    return {"name": source.name, "file": source.file, "local": local_copy(source), "urls": source.urls,
            "sha256": source.sha256, "pinned": source.sha256 is not None, "origin": source.origin,
            "fallback": source.fallback}


__all__ = ["REMOTE_ROOT_URL", "SOURCES", "DataNotAvailable", "Source", "UnknownSourceError", "by_file", "cache_path",
           "data_cache", "fetch", "first_records", "local_copy", "locate", "mirror_dir", "obtain", "offline", "status",
           "upstream_path"]
