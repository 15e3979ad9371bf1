"""Downstream regression: GLUE tasks measured along a sequential run (paper Figure 2).

Parts: run.py (``run_downstream``, input checks, the table) · gates.py · result.py · figure.py · test_downstream.py.
"""
