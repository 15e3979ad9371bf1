"""Disabling-edit isolation: are catastrophic edits intrinsic or accumulated (paper Sec. 3.4.1)?

Parts: run.py (``run_scan``, ``run_isolation``) · isolation.py (FreshModel, scan) · rules.py (outliers, health
collapse, intrinsic vs accumulated) · gates.py · result.py · figure.py · test_disabling.py.
"""
