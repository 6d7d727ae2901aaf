"""personkort: one person card per real person, reconciled nightly from three legacy registers.

This package is the domain core. It imports nothing from ``adapters``, ``api``, ``dags`` or
``cli``: those sit at the edge and depend on it, never the other way round.
"""
