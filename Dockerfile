# personkort on the official Airflow image: one image for the DAG's workers and the read API.
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root pyproject.toml requirements.lock README.md /opt/personkort/
COPY --chown=airflow:root personkort /opt/personkort/personkort
COPY --chown=airflow:root adapters /opt/personkort/adapters
COPY --chown=airflow:root api /opt/personkort/api
COPY --chown=airflow:root web /opt/personkort/web
COPY --chown=airflow:root cli /opt/personkort/cli
COPY --chown=airflow:root pipeline /opt/personkort/pipeline
COPY --chown=airflow:root simulator /opt/personkort/simulator
COPY --chown=airflow:root bench /opt/personkort/bench
COPY --chown=airflow:root policies /opt/personkort/policies
COPY --chown=airflow:root dags /opt/airflow/dags
RUN pip install --no-cache-dir -c /opt/personkort/requirements.lock -e /opt/personkort
ENV PERSONKORT_POLICY_DIR=/opt/personkort/policies/default
