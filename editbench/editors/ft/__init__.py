"""Fine-tuning baselines: unconstrained FT and L-infinity-constrained FT-C (see :mod:`editbench.editors.ft.ft`)."""
from editbench.editors.ft.ft import FTCEditor, FTEditor, fine_tune
from editbench.editors.ft.hparams import FTCHyperParams, FTHyperParams

__all__ = ["FTEditor", "FTCEditor", "FTHyperParams", "FTCHyperParams", "fine_tune"]
