"""Benchmarks, evaluations and experiments: scripts run by make targets, not library code (nothing imports them)."""
