"""ROME (Meng et al. 2022a) and r-ROME (Gupta et al. 2024): one rank-one edit of one MLP output matrix.

Modules, one step each (kmeng01/rome layout): :mod:`.hparams` (the config), :mod:`.compute_k` (k* and the raw
key), :mod:`.compute_v` (the v* optimisation), :mod:`.apply` (u = C⁻¹k*, the rank-one update,
:class:`ROMEEditor` / :class:`RROMEEditor`). Shared with MEMIT, in :mod:`editbench.editors.toolkit`: the seeded
context templates, the v* rows and fast/straightforward forward passes, the key covariance C and the solve.
"""
from editbench.editors.rome.apply import ROMEEditor, RROMEEditor, left_vector, rank_one_update
from editbench.editors.rome.hparams import ROMEHParams

__all__ = ["ROMEEditor", "RROMEEditor", "ROMEHParams", "left_vector", "rank_one_update"]
