"""Results, provenance, tables, leaderboards and plots."""
