"""Downstream regression: GLUE tasks measured along a sequential run (paper Figure 2)."""
