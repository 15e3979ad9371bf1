"""Metrics: teacher-forced target scoring, CounterFact ES/PS/NS, forgetting, distance, collapse detection."""
