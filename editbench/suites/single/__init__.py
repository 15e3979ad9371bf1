"""Single-edit reliability: each record edited alone on a fresh model (ES/PS/NS)."""
