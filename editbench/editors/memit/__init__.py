"""MEMIT (Meng et al. 2022b): batch fact edits spread over several MLP layers.

Modules, one step each: :mod:`.hparams` (the config), :mod:`.compute_z` (target residual z per request),
:mod:`.compute_ks` (template-averaged keys and current residuals), :mod:`.apply` (the layer loop and the
float64 solve; :class:`MEMITEditor`), :mod:`.runner` (generic: stop a forward early, replay the blocks above a
layer).
"""
from editbench.editors.memit.apply import MEMITEditor, memit_delta, spread_updates
from editbench.editors.memit.hparams import MEMITHParams

__all__ = ["MEMITEditor", "MEMITHParams", "memit_delta", "spread_updates"]
