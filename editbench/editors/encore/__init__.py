"""ENCORE (Gupta et al. 2025): MEMIT with most-probable early stopping (MPES) and a norm-constrained update.

:mod:`.hparams` (the config, MEMIT's plus ``prob_cutoff``, ``update_norm_lambda``, ``add_prev_edits``),
:mod:`.apply` (:class:`ENCOREEditor`, MEMIT's editor with its ``update_rule`` replaced; the formula and its source
are in that module's docstring). MPES itself is an optional stopping rule of MEMIT's z optimization
(:func:`editbench.editors.memit.compute_z.optimize_deltas`, off for MEMIT).
"""
from editbench.editors.encore.apply import ENCOREEditor, encore_delta
from editbench.editors.encore.hparams import ENCOREHParams

__all__ = ["ENCOREEditor", "ENCOREHParams", "encore_delta"]
