"""AlphaEdit (Fang et al., ICLR 2025): MEMIT with the update projected onto the null space of the preserved keys.

:mod:`.hparams` (MEMIT's config plus ``nullspace_threshold`` and ``L2``), :mod:`.apply` (the projector, the
update rule and :class:`AlphaEditEditor`, a :class:`~editbench.editors.memit.MEMITEditor` that overrides only
``update_rule`` and keeps the keys of its earlier edits as state).
"""
from editbench.editors.alphaedit.apply import (AlphaEditEditor, alphaedit_delta, alphaedit_delta_reduced,
                                               nullspace_basis, nullspace_projector, reduced_inverse,
                                               woodbury_downdate)
from editbench.editors.alphaedit.hparams import AlphaEditHParams

__all__ = ["AlphaEditEditor", "AlphaEditHParams", "alphaedit_delta", "alphaedit_delta_reduced", "nullspace_basis",
           "nullspace_projector", "reduced_inverse", "woodbury_downdate"]
