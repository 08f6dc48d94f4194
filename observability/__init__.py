"""Observability: the call id carried through a call's greenlets, JSON log lines, Prometheus metrics."""
