"""Shared building blocks of the locate-then-edit editors (ROME, MEMIT, and the MEMIT family built on them).

- :mod:`.forward`: the rows of a value optimisation (:func:`~.forward.build_batch` -> :class:`~.forward.VBatch`,
  :func:`~.forward.lookup_index`, :func:`~.forward.templated_prompts`) and its two forward passes
  (:class:`~.forward.FastForward`, :class:`~.forward.SlowForward`; :data:`~.forward.FAST_FAMILIES`).
- :mod:`.templates`: seeded context templates, ROME's and MEMIT's sampling schemes, one per-model cache.
- :mod:`.covariance`: the key covariance C = E[kkᵀ] of (model, layers), corpus names resolved, cached.
- :mod:`.linalg`: the float64 PSD solve (dead key dimensions handled).
"""
