"""The nightly personkort run: extract every register in parallel, stage, publish, report.

Thin on purpose: every task calls one function of ``pipeline.steps``, tested on its own. Bad data
never retries (a refused file or a gate stops the night, yesterday's cards stay served); a
transient failure (the database, the file system) retries with backoff.

    airflow dags test personkort_nightly --conf '{"drop_dir": "/drops/2026-11-20"}'
"""

from __future__ import annotations

import datetime as dt
import os

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task

DROPS = os.environ.get("PERSONKORT_DROP_DIR", "/drops/latest")
STORE = os.environ.get("PERSONKORT_STORE_URL", "")
WORK = os.environ.get("PERSONKORT_WORK_DIR", "data/runs")


def _notify(context: dict) -> None:
    from pipeline.steps import notify_failure

    notify_failure(context)


RETRY = {
    "retries": 3,
    "retry_delay": dt.timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "on_failure_callback": _notify,
}
CARDS = Asset("personkort://store/cards")


def _params() -> tuple[str, str, str]:
    context = get_current_context()
    params = context["params"]
    work = os.path.join(WORK, context["run_id"].replace(":", "_").replace("+", "_"))
    return params["drop_dir"], params["store_url"] or STORE, work


@dag(
    dag_id="personkort_nightly",
    schedule="30 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Oslo"),
    catchup=False,
    max_active_runs=1,
    default_args=RETRY,
    params={
        "drop_dir": Param(DROPS, type="string", description="The night's drop folder"),
        "store_url": Param(STORE, type="string", description="Store URL (empty: settings)"),
    },
    tags=["personkort"],
    doc_md=__doc__,
)
def personkort_nightly() -> None:
    @task(outlets=[Asset("personkort://registers/arena")])
    def extract_arena() -> dict:
        from pipeline.steps import extract

        drop, _, work = _params()
        return extract(drop, "arena", work)

    @task(outlets=[Asset("personkort://registers/infotrygd")])
    def extract_infotrygd() -> dict:
        from pipeline.steps import extract

        drop, _, work = _params()
        return extract(drop, "infotrygd", work)

    @task
    def municipal_files() -> list[str]:
        from pipeline.steps import municipal_files

        return municipal_files(_params()[0])

    @task(outlets=[Asset("personkort://registers/kommune")], map_index_template="{{ name }}")
    def extract_municipal(name: str) -> dict:
        from pipeline.steps import extract

        drop, _, work = _params()
        return extract(drop, "kommune", work, name)

    @task(retries=0)  # gates are decisions about data: retrying changes nothing
    def stage(_arena: dict, _infotrygd: dict, _municipal: list[dict]) -> dict:
        from pipeline.steps import stage

        drop, store, work = _params()
        return stage(store or None, drop, work)

    @task(retries=0, outlets=[CARDS])
    def publish(staged: dict) -> dict:
        from pipeline.steps import publish

        return publish(_params()[1] or None, staged)

    @task(trigger_rule="all_done", retries=0)
    def report(staged: dict) -> dict:
        """Write the run report whatever happened; then fail the run if the night was stopped,
        so that the steward sees it red in the Airflow UI."""
        from pipeline.steps import NightStopped, write_report

        _, store, work = _params()
        summary = write_report(store or None, staged["night"], os.path.join(work, "report.json"))
        if summary["status"] != "published":
            raise NightStopped(f"night {summary['night']} {summary['status']}: {staged['message']}")
        return summary

    staged = stage(
        extract_arena(), extract_infotrygd(), extract_municipal.expand(name=municipal_files())
    )
    publish(staged) >> report(staged)


dag_object = personkort_nightly()
