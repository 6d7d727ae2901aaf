"""Linkage benchmark: our reconciliation beside Splink 5 on the same simulated records."""
