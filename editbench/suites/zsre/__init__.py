"""zsRE question form vs completion form: do edits transfer between formats?

Parts: pairs.py (question/completion pairs and their sources) · metrics.py (transfer statistics) · run.py
(``run_transfer_experiment``) · gates.py · result.py · figure.py · test_zsre.py.
"""
