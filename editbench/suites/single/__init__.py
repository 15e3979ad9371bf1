"""Single-edit reliability: each record edited alone on a fresh model (ES/PS/NS).

Parts: run.py (``run``: the single-edit protocol over ``exp.n`` records) · gates.py · result.py · test_single.py. No
figure: its result is a row of the leaderboard (``editbench report``).
"""
