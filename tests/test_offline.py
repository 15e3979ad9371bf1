"""The one offline switch (editbench.models.cache.offline, issue 28 item 5): EDITBENCH_OFFLINE, HF_HUB_OFFLINE and
TRANSFORMERS_OFFLINE alike stop every implicit download -- named data files, hub models (local files only), the
front ends' model check and the Hugging Face datasets calls -- and messages name the flag that is set."""
from __future__ import annotations

import pytest

from editbench.models import cache, loader
from editbench.models.cache import OFFLINE_FLAGS, local_only, offline, offline_flag
from editbench.models.errors import ModelLoadError


@pytest.fixture
def online(monkeypatch):
    """No offline flag set (tests/conftest.py sets HF_HUB_OFFLINE for the whole run)."""
    for k in OFFLINE_FLAGS:
        monkeypatch.delenv(k, raising=False)


@pytest.mark.parametrize("value,on", [("1", True), ("true", True), (" YES ", True), ("on", True), ("0", False),
                                      ("", False), ("no", False)])
@pytest.mark.parametrize("flag", OFFLINE_FLAGS)
def test_each_flag_turns_it_on_and_is_named(online, monkeypatch, flag, value, on):
    monkeypatch.setenv(flag, value)
    assert offline() is on and offline_flag() == (flag if on else None)


def test_editbench_flag_is_named_first(online, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("EDITBENCH_OFFLINE", "1")
    assert offline_flag() == "EDITBENCH_OFFLINE"


@pytest.mark.parametrize("flag", [None, "EDITBENCH_OFFLINE", "TRANSFORMERS_OFFLINE"])
def test_hub_loading_is_local_files_only_when_offline(online, monkeypatch, flag):
    if flag:
        monkeypatch.setenv(flag, "1")
    seen = {}

    def fake(name, dtype, **kw):
        seen.update(kw)
        raise OSError("not in the cache")
    monkeypatch.setattr(loader, "_from_pretrained", fake)
    with pytest.raises(ModelLoadError) as ei:
        loader.load_hub("some-org/some-model")
    assert seen["local_files_only"] is bool(flag)
    assert (f"{flag} is set" in str(ei.value)) is bool(flag)


@pytest.mark.parametrize("flag", ["EDITBENCH_OFFLINE", "TRANSFORMERS_OFFLINE"])
def test_front_end_model_check_honours_every_flag(online, monkeypatch, flag):
    from editbench.runner.checks import check_model
    from editbench.runner.experiment import ExperimentError

    monkeypatch.setenv(flag, "1")
    with pytest.raises(ExperimentError, match=f"{flag} is set, so nothing can be downloaded"):
        check_model("some-org/not-in-any-cache")


def test_data_files_honour_transformers_offline_too(online, monkeypatch, tmp_path):
    from editbench.data.sources import DataNotAvailable, locate

    (tmp_path / "mirror").mkdir()
    monkeypatch.setenv("EDITBENCH_DATA_DIR", str(tmp_path / "mirror"))
    monkeypatch.setenv("EDITBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    with pytest.raises(DataNotAvailable, match="TRANSFORMERS_OFFLINE is set"):
        locate("counterfact/counterfact-edit.json", progress=False)
    assert not (tmp_path / "cache").exists()


def test_datasets_and_hub_are_local_only_inside_and_restored_after(online, monkeypatch):
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)  # as imported in a process with no HF flag
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with local_only() as on:
        assert on is False and datasets.config.HF_HUB_OFFLINE is False
    monkeypatch.setenv("EDITBENCH_OFFLINE", "1")
    with local_only() as on:
        assert on and datasets.config.HF_HUB_OFFLINE is True and huggingface_hub.constants.HF_HUB_OFFLINE is True
    assert datasets.config.HF_HUB_OFFLINE is False and huggingface_hub.constants.HF_HUB_OFFLINE is False


def test_glue_build_reads_only_the_datasets_cache_when_offline(online, monkeypatch, tmp_path):
    import datasets
    import datasets.config

    from editbench.data import tasks
    from editbench.data.sources import DataNotAvailable

    monkeypatch.setenv("EDITBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("EDITBENCH_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    seen = []

    def load_dataset(*a, **kw):
        seen.append(datasets.config.HF_HUB_OFFLINE)
        raise ConnectionError("offline and not in the datasets cache")
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    with pytest.raises(DataNotAvailable, match="load_dataset"):
        tasks.build_from_glue("rte", "no local copy")
    assert seen == [True] and datasets.config.HF_HUB_OFFLINE is False


def test_one_definition():
    """No module keeps its own reading of the flags (there were three)."""
    from pathlib import Path

    root = Path(cache.__file__).resolve().parents[1]
    readers = [p.relative_to(root).as_posix() for p in root.rglob("*.py")
               if '"TRANSFORMERS_OFFLINE"' in p.read_text() or '("EDITBENCH_OFFLINE"' in p.read_text()]
    assert readers == ["models/cache.py"]
