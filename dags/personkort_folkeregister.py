"""The Folkeregister's events inbox, read every five minutes into the store.

Thin on purpose: one task calling ``pipeline.inbox.read_inbox``. Each ``hendelser_*.jsonl`` is
read in name order, its events stored once by ``hendelseId`` and the file moved to ``lest/``;
a raised protection marker counts at the next lookup. An inbox that cannot be read is marked in
the store (the cards say the day's events may be missing) and the run is red with the reason,
without retries: the next run, five minutes later, is the retry.

    airflow dags test personkort_folkeregister --conf '{"inbox_dir": "/inbox/folkeregister"}'
"""

from __future__ import annotations

import datetime as dt
import os

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

INBOX = os.environ.get("PERSONKORT_FEED_INBOX", "/inbox/folkeregister")
STORE = os.environ.get("PERSONKORT_STORE_URL", "")


def _notify(context: dict) -> None:
    from pipeline.steps import notify_failure

    notify_failure(context)


@dag(
    dag_id="personkort_folkeregister",
    schedule=dt.timedelta(minutes=5),
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Oslo"),
    catchup=False,
    max_active_runs=1,  # two readers at once would store nothing twice, but race on the moves
    default_args={"retries": 0, "on_failure_callback": _notify},
    params={
        "inbox_dir": Param(INBOX, type="string", description="The events inbox folder"),
        "store_url": Param(STORE, type="string", description="Store URL (empty: settings)"),
    },
    tags=["personkort", "folkeregister"],
    doc_md=__doc__,
)
def personkort_folkeregister() -> None:
    # One XCom holding the whole summary (a dict return would be split into one per key).
    @task(outlets=[Asset("personkort://feed/events")], multiple_outputs=False)
    def read_inbox() -> dict:
        """Read the inbox; red (summary in XCom ``summary``) when a file or the folder could
        not be read, so that the operators see it."""
        import logging

        from pipeline.inbox import read_inbox, summary_text

        context = get_current_context()
        params = context["params"]
        summary = read_inbox(params["store_url"] or STORE or None, params["inbox_dir"] or INBOX)
        logging.getLogger("personkort.folkeregister").info("inbox read\n%s", summary_text(summary))
        if summary["status"] != "read":
            context["ti"].xcom_push("summary", summary)
            raise AirflowFailException("; ".join(summary["errors"]))
        return summary

    read_inbox()


dag_object = personkort_folkeregister()
