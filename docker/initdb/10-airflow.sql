-- Airflow's metadata lives in its own database beside the card store.
CREATE DATABASE airflow OWNER personkort;
