"""The real Airflow DAG, run with ``dag.test()`` (its own AIRFLOW_HOME), on the shared sample
nights, against the store on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import sqlalchemy as sa

from adapters import read_drop
from adapters.drop import fingerprint
from personkort.nightly import run_night
from personkort.reconcile import pairwise_score, record_key
from personkort.store import open_engine, queries
from tests.conftest import ROOT, read_csv

RUN = """
import json, sys
sys.path.insert(0, {dags!r})
from personkort_nightly import dag_object
run = dag_object.test(run_conf={conf})
print("STATE=" + str(run.state))
from sqlalchemy import select
from airflow.models.taskinstance import TaskInstance
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
with create_session() as session:
    mine = dict(dag_id=run.dag_id, run_id=run.run_id)
    tis = session.scalars(select(TaskInstance).filter_by(**mine, map_index=-1)).all()
    rows = session.scalars(select(XComModel).filter_by(**mine, map_index=-1)).all()
    xcom = {{f"{{r.task_id}}.{{r.key}}": XComModel.deserialize_value(r) for r in rows}}
    print("TASKS=" + json.dumps({{ti.task_id: str(ti.state) for ti in tis}}))
    print("XCOM=" + json.dumps(xcom, default=str))
"""


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("airflow")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "PERSONKORT_WORK_DIR": str(home / "runs"),
        "PERSONKORT_DATA_DIR": str(home / "data"),
    }
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run(
        [airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300
    )
    return env


def run_dag(env: dict[str, str], drop: Path, store: str, **extra: object) -> tuple[str, str]:
    """Run the DAG once; its final state and everything it printed (then its tasks' states on
    a ``TASKS=`` line and its XComs, from Airflow's metadata DB, on an ``XCOM=`` line)."""
    conf = {"drop_dir": str(drop), "store_url": store, **extra}
    code = RUN.format(dags=str(ROOT / "dags"), conf=repr(conf))
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = done.stdout + done.stderr
    lines = output.splitlines()
    state = next((x.split("=", 1)[1] for x in lines if x.startswith("STATE=")), "")
    return state, output


def printed(output: str, name: str) -> dict:
    """The JSON a run printed on its ``NAME=`` line."""
    return json.loads(
        next(x for x in output.splitlines() if x.startswith(name + "="))[len(name) + 1 :]
    )


def test_dag_runs_two_nights(airflow_env: dict[str, str], sample: Path, store_url: str) -> None:
    os.environ["PERSONKORT_DATA_DIR"] = airflow_env["PERSONKORT_DATA_DIR"]
    for number, name in enumerate(("night1", "night2"), start=1):
        state, output = run_dag(airflow_env, sample / name, store_url)
        assert state == "success", output[-3000:]
        engine = open_engine(store_url)
        assert queries.served_night(engine) == number
        cards: dict[str, set[str]] = defaultdict(set)
        for register, source_key, card in queries.links(engine):
            cards[card].add(record_key(register, source_key))
        truth = {
            record_key(r["register"], r["source_key"]): r["person_key"]
            for r in read_csv(sample / name / "truth" / "links.csv")
        }
        score = pairwise_score(cards.values(), truth)
        assert score.precision == 1.0 and score.recall >= 0.99
        night = queries.nights(engine)[-1]
        assert night["status"] == "published"
        assert night["report"]["counts"]["cards"] == len(cards)
        shown = printed(output, "XCOM")["report.return_value"]  # the report task's XCom tab
        assert shown["night"] == number and shown["status"] == "published"
        assert shown["cards"] == len(cards)
        # The Folkeregister snapshot, read in a task of its own and written with the night.
        assert printed(output, "TASKS")["extract_folkeregister"] == "success"
        feed = night["counts"]["feed"]
        assert feed["status"] == "read" and shown["feed"] == feed
        assert feed["file"] == next((sample / name / "folkeregister").glob("*.jsonl")).name
        if number == 1:
            assert feed["persons"] == feed["persons_new"] == 330
    reports = list(Path(airflow_env["PERSONKORT_WORK_DIR"]).glob("*/report.json"))
    assert reports and all(json.loads(p.read_text())["counts"] for p in reports)


class _Alerts(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Alerts.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_cut_short_infotrygd_stops_the_night(
    airflow_env: dict[str, str], sample: Path, store_url: str, tmp_path: Path
) -> None:
    os.environ["PERSONKORT_DATA_DIR"] = airflow_env["PERSONKORT_DATA_DIR"]
    server = HTTPServer(("127.0.0.1", 0), _Alerts)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Alerts.received.clear()
    state, output = run_dag(airflow_env, sample / "night1", store_url)
    assert state == "success", output[-3000:]
    engine = open_engine(store_url)
    served = sorted(queries.links(engine))
    drop = tmp_path / "night2"
    shutil.copytree(sample / "night2", drop)
    (info,) = (drop / "infotrygd").glob("*.dat")
    info.chmod(0o644)
    info.write_bytes(info.read_bytes()[:9000])
    alerted = {**airflow_env, "PERSONKORT_ALERT_WEBHOOK": f"http://127.0.0.1:{server.server_port}/"}
    state, output = run_dag(alerted, drop, store_url)
    server.shutdown()
    assert state == "failed"
    assert _Alerts.received and _Alerts.received[0]["task"] in ("publish", "report")
    assert "yesterday's cards still served" in _Alerts.received[0]["error"]
    assert "yesterday's cards still served" in output and info.name in output
    assert queries.served_night(engine) == 1
    assert sorted(queries.links(engine)) == served
    night = queries.nights(engine)[-1]
    assert night["status"] == "refused"
    assert info.name in json.dumps(night["report"]) and "trailer" in json.dumps(night["report"])


STILL_SERVED = "stopped, yesterday's cards still served"


@pytest.mark.parametrize("empty", [False, True], ids=["no-drop-folder", "empty-drop-folder"])
def test_no_drop_stops_with_a_steward_message(
    airflow_env: dict[str, str], tmp_path: Path, empty: bool
) -> None:
    """The scheduled run of a night with nothing delivered: red at the drop check and at the
    report, with one message for the steward (no retries, no TypeError), no night recorded."""
    os.environ["PERSONKORT_DATA_DIR"] = airflow_env["PERSONKORT_DATA_DIR"]
    drop = tmp_path / "drop"
    if empty:
        (drop / "kommune").mkdir(parents=True)
    store = f"sqlite:///{tmp_path / 'store.sqlite'}"
    state, output = run_dag(airflow_env, drop, store)
    assert state == "failed", output[-3000:]
    assert "TypeError" not in output and "NoneType" not in output
    tasks = printed(output, "TASKS")
    assert tasks["municipal_files"] == "failed" and tasks["report"] == "failed"
    assert tasks["extract_arena"] == tasks["stage"] == "upstream_failed"
    why = "holds no register extract" if empty else "does not exist"
    xcom = printed(output, "XCOM")
    message = xcom["municipal_files.stopped"]
    assert message.startswith(f"{STILL_SERVED}: ingen_leveranse: the drop folder {drop} {why}")
    shown = xcom["report.report"]  # the report task's XCom tab, though it is red
    assert shown["status"] == "not_staged" and shown["message"] == message
    assert f"AirflowFailException: {message}" in output
    assert "NightStopped" not in output  # the message alone, not a chained trace
    work = Path(airflow_env["PERSONKORT_WORK_DIR"])
    assert any(
        json.loads(p.read_text()).get("message") == message for p in work.glob("*/report.json")
    )
    assert queries.nights(open_engine(store)) == []


@pytest.mark.parametrize("missing", ["infotrygd", "kommune"])
def test_drop_missing_a_register_is_refused_on_the_record(
    airflow_env: dict[str, str], sample: Path, store_url: str, tmp_path: Path, missing: str
) -> None:
    """A drop without one register is read and refused by the gates (``kilde_avvist``): the
    night is on the record as refused, the message names the register and the drop. With no
    municipal file the mapped task is skipped, and the night is still staged and refused."""
    os.environ["PERSONKORT_DATA_DIR"] = airflow_env["PERSONKORT_DATA_DIR"]
    drop = tmp_path / "night1"
    shutil.copytree(sample / "night1", drop, ignore=shutil.ignore_patterns(missing))
    state, output = run_dag(airflow_env, drop, store_url)
    assert state == "failed", output[-3000:]
    assert "TypeError" not in output
    tasks = printed(output, "TASKS")
    assert tasks["stage"] == "success" and tasks["publish"] == tasks["report"] == "failed"
    shown = printed(output, "XCOM")["report.report"]
    assert shown["status"] == "refused" and shown["night"] == 1
    assert f"{missing} ({drop}) ble avvist: no {missing} extract delivered" in shown["message"]
    assert STILL_SERVED in shown["message"]
    engine = open_engine(store_url)
    assert queries.served_night(engine) is None
    (night,) = queries.nights(engine)
    assert night["status"] == "refused" and "kilde_avvist" in json.dumps(night["report"])


def test_a_drop_without_the_feed_still_publishes(
    airflow_env: dict[str, str], sample: Path, tmp_path: Path
) -> None:
    """No ``folkeregister/`` in the drop: the night is read as before and published, and says
    the feed is missing (the last snapshot stays in force); never a refusal. SQLite only: the
    feed's store is tested on both databases elsewhere, and each run costs seconds."""
    os.environ["PERSONKORT_DATA_DIR"] = airflow_env["PERSONKORT_DATA_DIR"]
    drop = tmp_path / "night1"
    shutil.copytree(sample / "night1", drop, ignore=shutil.ignore_patterns("folkeregister"))
    store = f"sqlite:///{tmp_path / 'store.sqlite'}"
    state, output = run_dag(airflow_env, drop, store)
    assert state == "success", output[-3000:]
    xcom = printed(output, "XCOM")
    assert xcom["extract_folkeregister.return_value"]["feed"] == "missing"
    shown = xcom["report.return_value"]
    assert shown["status"] == "published"
    assert shown["feed"] == {"status": "missing", "reason": "no folkeregister snapshot delivered"}
    (night,) = queries.nights(open_engine(store))
    assert night["status"] == "published" and night["counts"]["feed"]["status"] == "missing"
    assert "kilde_avvist" not in json.dumps(night["report"])


INBOX_RUN = """
import json, sys
sys.path.insert(0, {dags!r})
from personkort_folkeregister import dag_object
from sqlalchemy import select
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
for attempt in ("FIRST", "AGAIN"):
    run = dag_object.test(run_conf={conf})
    with create_session() as session:
        rows = session.scalars(
            select(XComModel).filter_by(dag_id=run.dag_id, run_id=run.run_id)
        ).all()
        xcom = {{f"{{r.task_id}}.{{r.key}}": XComModel.deserialize_value(r) for r in rows}}
    print(attempt + "=" + json.dumps({{"state": str(run.state), "xcom": xcom}}, default=str))
"""


def test_the_inbox_dag_stores_the_events_once(
    airflow_env: dict[str, str], sample: Path, tmp_path: Path
) -> None:
    """The scheduled inbox run, twice on a copy of the sample inbox: the 7 lines (one a
    duplicate) are 6 stored events and the files are moved to ``lest/``; the second run finds
    nothing new. Both runs in one process: Airflow's start-up is most of a run's time."""
    os.environ["PERSONKORT_DATA_DIR"] = airflow_env["PERSONKORT_DATA_DIR"]
    inbox = tmp_path / "inbox"
    shutil.copytree(sample / "hendelser", inbox, ignore=shutil.ignore_patterns("*.csv"))
    delivered = sorted(p.name for p in inbox.iterdir())
    store = f"sqlite:///{tmp_path / 'store.sqlite'}"
    conf = {"inbox_dir": str(inbox), "store_url": store}
    code = INBOX_RUN.format(dags=str(ROOT / "dags"), conf=repr(conf))
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=airflow_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = done.stdout + done.stderr
    first, again = printed(output, "FIRST"), printed(output, "AGAIN")
    assert first["state"] == again["state"] == "success", output[-3000:]
    summary = first["xcom"]["read_inbox.return_value"]
    assert (summary["received"], summary["stored"], summary["duplicates"]) == (7, 6, 1)
    assert [f["file"] for f in summary["files"]] == delivered
    assert sorted(p.name for p in (inbox / "lest").iterdir()) == delivered
    assert not list(inbox.glob("hendelser_*.jsonl"))
    assert again["xcom"]["read_inbox.return_value"]["stored"] == 0
    with open_engine(store).connect() as conn:
        stored = conn.execute(sa.text("SELECT count(DISTINCT event_id) FROM feed_event"))
        assert stored.scalar() == 6
        assert conn.execute(sa.text("SELECT inbox_error FROM feed_state")).scalar() is None


def test_a_steward_accepts_a_missing_municipal_file_for_one_run(
    airflow_env: dict[str, str], sample: Path, store_url: str, tmp_path: Path
) -> None:
    """The run parameters accept_sources / accepted_by / accept_reason let a night without
    flyt_0301 (which delivered last night) publish; the report shows the acceptance."""
    os.environ["PERSONKORT_DATA_DIR"] = airflow_env["PERSONKORT_DATA_DIR"]
    engine = open_engine(store_url)
    first = sample / "night1"
    run_night(engine, read_drop(first), drop_dir=str(first), fingerprint=fingerprint(first))
    drop = tmp_path / "night2"
    shutil.copytree(sample / "night2", drop, ignore=shutil.ignore_patterns("flyt_0301_*"))
    state, output = run_dag(
        airflow_env,
        drop,
        store_url,
        accept_sources=["kommune:flyt_0301"],
        accepted_by="Z200001",
        accept_reason="Oslo kommune varslet nedetid",
    )
    assert state == "success", output[-3000:]
    (accepted,) = printed(output, "XCOM")["report.return_value"]["sources_accepted"]
    assert accepted["source"] == "kommune:flyt_0301" and accepted["steward"] == "Z200001"
    # The night records its Airflow run, which the stewards' page links to.
    assert queries.nights(engine)[-1]["counts"]["airflow_run_id"]


def test_dagbag_imports_quickly_without_heavy_work(airflow_env: dict[str, str]) -> None:
    code = (
        "import sys, time\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(ROOT / 'dags')!r})\n"
        "print('ERRORS=' + repr(bag.import_errors))\n"
        "print('DAGS=' + ','.join(bag.dag_ids))\n"
        "print('SECONDS=' + str(max(s.duration.total_seconds() for s in bag.dagbag_stats)))\n"
        "heavy = ('pipeline.steps', 'adapters', 'polars')\n"
        "print('HEAVY=' + str(any(m in sys.modules for m in heavy)))\n"
    )
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=airflow_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    assert lines["ERRORS"] == "{}"
    assert sorted(lines["DAGS"].split(",")) == ["personkort_folkeregister", "personkort_nightly"]
    assert float(lines["SECONDS"]) < 2.0
    assert lines["HEAVY"] == "False"
    assert time.perf_counter() - started < 60
