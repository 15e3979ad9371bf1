"""MEMIT (Meng et al. 2022b): batch fact edits spread over several MLP layers.

Modules, one step each: :mod:`.hparams` (the config), :mod:`.compute_z` (target residual z per request),
:mod:`.compute_ks` (template-averaged keys and current residuals), :mod:`.apply` (the layer loop and the
float64 solve; :class:`MEMITEditor`, whose :meth:`~MEMITEditor.update_rule` is the extension point of the MEMIT
family). Shared with ROME, in :mod:`editbench.editors.toolkit`: context templates, the z rows and fast forward
pass, the key covariances and the solve.
"""
from editbench.editors.memit.apply import MEMITEditor, UpdateRule, memit_delta, spread_updates
from editbench.editors.memit.hparams import MEMITHParams

__all__ = ["MEMITEditor", "MEMITHParams", "UpdateRule", "memit_delta", "spread_updates"]
