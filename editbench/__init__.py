"""editbench: a pytest conformance suite for model editing at scale.

The data path, one line:
records -> EditRequest -> Editor.apply -> scorer -> runner -> results -> report
"""
__version__ = "0.1.0"
