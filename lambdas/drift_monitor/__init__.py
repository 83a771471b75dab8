"""Drift monitor: scheduled; captured requests vs the champion's baseline.json -> PSI metrics."""
