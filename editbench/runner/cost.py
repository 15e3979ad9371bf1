"""What a run cost, measured (never a static table): wall-clock seconds by phase and peak memory.

- ``prepare_s``: one-off work before the first edit (``Editor.prepare``: covariance statistics, trained networks);
  context templates are sampled inside the first ``apply``;
- ``apply_s_*``: the editor's ``apply`` per edit (mean and total);
- ``eval_s``: scoring, history re-scoring and health probes;
- ``peak_rss_mb``: the process's peak resident memory so far (``getrusage``; Linux reports KiB, macOS bytes);
- ``cuda_max_allocated_mb``: ``torch.cuda.max_memory_allocated`` when CUDA is in use, else None.
"""
from __future__ import annotations

import resource
import sys


def peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def cuda_max_allocated_mb() -> float | None:
    import torch
    if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
        return None
    return torch.cuda.max_memory_allocated() / 2**20


def memory() -> dict:
    """Peak memory now: ``{"peak_rss_mb", "cuda_max_allocated_mb"}``."""
    return {"peak_rss_mb": round(peak_rss_mb(), 1), "cuda_max_allocated_mb": cuda_max_allocated_mb()}
