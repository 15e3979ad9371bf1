"""Sequential scaling: hundreds of edits to one model; forgetting, editability and collapse as edits accumulate.

Parts: run.py (``run``: one sample of the engine's sequential loop) · gates.py · result.py · figure.py ·
test_sequential.py · test_paper_scale.py (the seed paper's models and budgets, GPU).
"""
