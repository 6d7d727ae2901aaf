"""The nightly personkort run: extract every register (and the Folkeregister snapshot) in
parallel, stage, publish, report.

Thin on purpose: every task calls one function of ``pipeline.steps``, tested on its own. Bad data
never retries (a refused file or a gate stops the night, yesterday's cards stay served); a
transient failure (the database, the file system) retries with backoff. A missing or empty drop
stops the first task (``ingen_leveranse``). The night's summary is the report task's XCom and
log (Airflow 3.3 cannot set a run's note from a task: docs/airflow.md).

    airflow dags test personkort_nightly --conf '{"drop_dir": "/drops/2026-11-20"}'
"""

from __future__ import annotations

import datetime as dt
import os
from typing import NoReturn

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

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


def _stop(message: str, key: str, value: object = None) -> NoReturn:
    """Fail the task without retries, keeping ``value`` (else the message) in the task's XCom
    ``key``, where the UI shows it: a stopped night is a decision about data, not a crash."""
    get_current_context()["ti"].xcom_push(key, message if value is None else value)
    raise AirflowFailException(message)


def _run_id() -> str:
    return str(get_current_context()["run_id"])


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
        # A steward's acceptance, for this run only, of sources that are missing, empty or far
        # smaller than last night (e.g. ["kommune:flyt_0301"]); audited, shown in the report.
        "accept_sources": Param(
            [], type="array", description="Sources accepted as missing or short tonight"
        ),
        "accepted_by": Param("", type="string", description="The accepting steward's id"),
        "accept_reason": Param("", type="string", description="Why the sources are accepted"),
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

    # The Folkeregister snapshot: a night without it (or with one refused) goes on with the
    # feed's last state, noted in the report; never a refusal of the night.
    @task(outlets=[Asset("personkort://registers/folkeregister")])
    def extract_folkeregister() -> dict:
        from pipeline.steps import extract

        drop, store, work = _params()
        return extract(drop, "folkeregister", work, store_url=store)

    @task
    def municipal_files() -> list[str]:
        """Check the drop first (no folder, or nothing in it, stops the run here) and list
        its municipal files."""
        from pipeline.steps import NightStopped, municipal_files

        try:
            return municipal_files(_params()[0])
        except NightStopped as stopped:
            message = str(stopped)
        _stop(message, "stopped")  # outside the except: the message alone, no chained trace

    @task(outlets=[Asset("personkort://registers/kommune")], map_index_template="{{ name }}")
    def extract_municipal(name: str) -> dict:
        from pipeline.steps import extract

        drop, _, work = _params()
        return extract(drop, "kommune", work, name)

    # Gates are decisions about data: retrying changes nothing. ``none_failed``: a drop with no
    # municipal file (the mapped task is skipped) is still staged, and refused on the record.
    @task(retries=0, trigger_rule="none_failed")
    def stage(_arena: dict, _infotrygd: dict, _feed: dict, _municipal: list[dict]) -> dict:
        from pipeline.steps import acceptance, stage

        drop, store, work = _params()
        params = get_current_context()["params"]
        try:
            accepted = acceptance(
                params.get("accept_sources"),
                params.get("accepted_by", ""),
                params.get("accept_reason", ""),
            )
        except ValueError as exc:
            _stop(f"accept_sources: {exc}", "stopped")
        return stage(store or None, drop, work, accepted, run_id=_run_id())

    @task(retries=0, outlets=[CARDS])
    def publish(staged: dict) -> dict:
        from pipeline.steps import publish

        return publish(_params()[1] or None, staged)

    # One XCom (``return_value``, or ``report`` on a red night) holding the whole summary: a
    # dict return would otherwise be split into one XCom per key.
    @task(trigger_rule="all_done", retries=0, multiple_outputs=False)
    def report(staged: dict | None) -> dict:
        """Write the run report whatever happened (``staged`` is None when no night was
        staged); then fail the run if the night was stopped, so that the steward sees it red in
        the Airflow UI, with the summary in this task's XCom and log."""
        import logging

        from pipeline.steps import report, report_text

        _, store, work = _params()
        ti = get_current_context()["ti"]
        stopped = ti.xcom_pull(task_ids="municipal_files", key="stopped")
        summary = report(store or None, staged, os.path.join(work, "report.json"), stopped)
        logging.getLogger("personkort.nightly").info("run report\n%s", report_text(summary))
        if summary["status"] == "not_staged":
            _stop(summary["message"], "report", summary)
        if summary["status"] != "published":
            message = f"night {summary['night']} {summary['status']}: {summary['message']}"
            _stop(message, "report", summary)
        return summary

    files = municipal_files()  # checks the drop before any extract reads it
    arena, infotrygd, feed = extract_arena(), extract_infotrygd(), extract_folkeregister()
    files >> [arena, infotrygd, feed]
    staged = stage(arena, infotrygd, feed, extract_municipal.expand(name=files))
    publish(staged) >> report(staged)


dag_object = personkort_nightly()
