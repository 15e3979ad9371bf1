"""Datasets -> :class:`EditRequest`.

``load_records(name_or_path, n=None, seed=None, on_error="raise")`` is the entry point (see
:mod:`editbench.data.registry`); the per-format parsers live in :mod:`~editbench.data.counterfact` (ROME and
EasyEdit CounterFact), :mod:`~editbench.data.zsre` (MEND zsRE) and :mod:`~editbench.data.known` (known_1000),
the verified download of the full CounterFact in :mod:`~editbench.data.download`.
"""
from editbench.data.counterfact import parse_easyedit, parse_rome
from editbench.data.download import (ChecksumError, DownloadError, UnverifiedDownloadWarning, download_counterfact,
                                     download_file)
from editbench.data.known import KnownFact, parse_known
from editbench.data.registry import (DATASETS, UnknownDatasetError, data_dir, detect_file_format, detect_format,
                                     list_datasets, load_edit_orders, load_known, load_records, order_records,
                                     read_json, read_json_records)
from editbench.data.schema import DatasetFileError, DatasetFileMissing, EditRequest, RecordError
from editbench.data.zsre import parse_zsre

__all__ = [
    "ChecksumError", "DATASETS", "DatasetFileError", "DatasetFileMissing", "DownloadError", "EditRequest",
    "KnownFact", "RecordError", "UnknownDatasetError", "UnverifiedDownloadWarning", "data_dir",
    "detect_file_format", "detect_format", "download_counterfact", "download_file", "list_datasets",
    "load_edit_orders", "load_known", "load_records", "order_records", "parse_easyedit", "parse_known",
    "parse_rome", "parse_zsre", "read_json", "read_json_records",
]
