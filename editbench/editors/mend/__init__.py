"""MEND (Mitchell et al. 2021, "Fast Model Editing at Scale"): a meta-trained network edits by gradient transform.

Modules: :mod:`.network` (the per-shape gradient transform, step sizes, safetensors I/O), :mod:`.factors` (the
rank-1 factors of the edit gradient), :mod:`.editor` (:class:`MENDEditor`), :mod:`.store` (where trained networks
live), :mod:`.train_data` and :mod:`.train` (meta-training, ``editbench mend train``). Shipped networks are under
``weights/<model>/``.
"""
from editbench.editors.mend.editor import MENDEditor
from editbench.editors.mend.hparams import MENDHParams
from editbench.editors.mend.network import MENDNetwork, load_network, save_network
from editbench.editors.mend.store import MENDNetworkMissing

__all__ = ["MENDEditor", "MENDHParams", "MENDNetwork", "MENDNetworkMissing", "load_network", "save_network"]
