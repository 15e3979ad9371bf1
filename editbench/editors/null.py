"""The null editor: changes nothing. Its scores are the unedited model's, the floor every editor is compared to."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from editbench.data.schema import EditRequest
from editbench.editors.base import EditResult, Editor, HParams


@dataclass(frozen=True)
class NullHyperParams(HParams):
    """No hyperparameters."""


class NullEditor(Editor):
    """Baseline: ``apply`` touches no parameter and returns empty originals."""

    name = "null"
    hparams_class = NullHyperParams
    supports_batch = True

    def apply(self, model: torch.nn.Module, tok: Any, requests: Sequence[EditRequest]) -> EditResult:
        for r in requests:  # the same contract as every editor: a malformed request is a RecordError
            r.validate()
        return EditResult(stats={"n_requests": len(requests)})
