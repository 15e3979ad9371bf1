"""ROME (Meng et al. 2022a) and r-ROME (Gupta et al. 2024): one rank-one edit of one MLP output matrix.

Modules, one step each (kmeng01/rome layout): :mod:`.hparams` (the config), :mod:`.templates` (seeded context
templates), :mod:`.compute_k` (k* and the raw key), :mod:`.compute_v` (the v* optimisation) with
:mod:`.forward` (its fast and straightforward forward passes), :mod:`.apply` (u = C⁻¹k*, the rank-one update,
:class:`ROMEEditor` / :class:`RROMEEditor`). Second moments C come from :mod:`editbench.models.stats`.
"""
from editbench.editors.rome.apply import ROMEEditor, RROMEEditor, left_vector, rank_one_update
from editbench.editors.rome.hparams import ROMEHParams

__all__ = ["ROMEEditor", "RROMEEditor", "ROMEHParams", "left_vector", "rank_one_update"]
