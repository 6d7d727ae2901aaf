"""The nightly run as steps: what the Airflow DAG calls one task at a time.

Wiring at the edge: it knows the adapters, the store and the core. Each step is a plain function,
tested on its own; steps hand data to each other through a work folder per run, never through
Airflow's XCom (a night's extract is far too large for it).
"""
