"""The caseworkers' page in a real browser on the embedded default: Enter to the card painted.

    .venv/bin/python -m bench.browser_lookup [--persons 20000] [--lookups 300] [--loads 20]

Builds what ``make run`` serves (a SQLite store; the simulator's registers for ``--persons``;
night 1 through ``personkort.nightly.run_night``), serves the real app under uvicorn in its
own process (one worker, as ``personkort serve``), and drives Debian's chromium
(``/usr/bin/chromium``, the browser tests' flags) through Playwright, signed in as a demo state
caseworker with the keyboard.

For each lookup of a different person: Alt+F3 to the number field, the number typed, Enter.
What is measured, in the page, on the page's own clock (``performance.now()``):

* start: the ``timeStamp`` of the Enter ``keydown`` event in the number field (a capturing
  listener added with ``page.evaluate``): when the browser received the key;
* end: a ``MutationObserver`` on the answer area sees the card's heading (``#kort-tittel``)
  inserted; from there ``requestAnimationFrame`` (the frame that will show it) and then a
  ``setTimeout(0)`` queued inside that frame callback, which runs once the frame has been
  rendered: the card is on screen.

So each figure holds the control-digit check, the POST, the server's whole lookup (role, rate
limit, read, gate, audit event written, view) and the HTML rendering, htmx's swap, and the
browser's style, layout and paint of the card. Persons the gate refuses (kode 6, skjermet) are
looked up but not counted. The rate limit is raised for the bench server
(``PERSONKORT_LOOKUPS_PER_MINUTE``): 120 lookups a minute per caseworker would stop it.

First contentful paint: ``--loads`` fresh loads of ``/`` (cache kept, as a caseworker's
browser would), the ``first-contentful-paint`` entry of each (``PerformanceObserver`` type
``paint``, buffered).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.api.run import start, stop
from tests.api_server import free_port
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

CASEWORKER = "Z100001"  # a state caseworker (web/demo.py)
LOOKUPS_PER_MINUTE = "1000000"

INSTALL = """() => {
  const b = window.__bench = {start: null, wait: null, resolve: null};
  document.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && e.target && e.target.id === "ident") b.start = e.timeStamp;
  }, true);
  const seen = new WeakSet();
  new MutationObserver(() => {
    const answer = document.querySelector("#svar #kort-tittel, #svar #problem");
    if (!answer || seen.has(answer) || b.resolve === null) return;
    seen.add(answer);
    const kind = answer.id === "kort-tittel" ? "card" : answer.dataset.code;
    const start = b.start, done = b.resolve;
    b.resolve = null;
    const inserted = performance.now();
    requestAnimationFrame(() => setTimeout(() => {
      const post = performance.getEntriesByType("resource")
        .filter((r) => r.name.endsWith("/oppslag")).pop();
      performance.clearResourceTimings();
      done({ms: performance.now() - start, kind, inserted: inserted - start,
            request: post ? post.responseEnd - post.startTime : null});
    }));
  }).observe(document.getElementById("svar"), {childList: true, subtree: true});
}"""
ARM = "() => { const b = window.__bench; b.wait = new Promise(r => { b.resolve = r; }); }"
FCP = """() => new Promise((resolve) => {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (e.name === "first-contentful-paint") resolve(e.startTime);
    }
  }).observe({type: "paint", buffered: true});
})"""


def prepare(persons: int, folder: Path) -> tuple[str, list[str]]:
    """The embedded default: simulated registers, night 1 into a SQLite store. Returns the
    store URL and one identity number per person a state register holds."""
    from adapters import read_drop
    from adapters.drop import fingerprint
    from personkort.nightly import run_night
    from personkort.store import open_engine
    from simulator import simulate

    simulate(persons, 1, 1, folder / "registers")
    drop = folder / "registers" / "night1"
    url = f"sqlite:///{folder / 'personkort.sqlite'}"
    engine = open_engine(url)
    run_night(engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT cl.card_id, MIN(sr.ident) FROM source_record sr "
                "JOIN card_link cl ON cl.record_key = sr.record_key AND cl.valid_to IS NULL "
                "WHERE sr.valid_to IS NULL AND sr.ident IS NOT NULL AND sr.register <> 'kommune' "
                "GROUP BY cl.card_id ORDER BY cl.card_id"
            )
        ).all()
    engine.dispose()
    return url, [ident for _, ident in rows]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def drive(base: str, idents: list[str], lookups: int, loads: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=base, locale="nb-NO", timezone_id="Europe/Oslo")
        page = context.new_page()
        page.goto("/logg-inn")
        page.focus(f"#bruker-{CASEWORKER}")
        page.keyboard.press("Space")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        fcp = []
        for _ in range(loads):
            page.goto("/")
            fcp.append(page.evaluate(FCP))
        page.evaluate(INSTALL)
        times: list[float] = []
        parts: dict[str, list[float]] = {"request": [], "inserted": []}
        refused: dict[str, int] = {}
        for ident in idents:
            if len(times) >= lookups:
                break
            page.keyboard.press("Alt+F3")
            page.keyboard.press("Control+A")
            page.keyboard.type(ident)
            page.evaluate(ARM)
            page.keyboard.press("Enter")
            result = page.evaluate("() => window.__bench.wait")
            if result["kind"] == "card":
                times.append(result["ms"])
                parts["inserted"].append(result["inserted"])
                if result["request"] is not None:
                    parts["request"].append(result["request"])
            else:
                refused[result["kind"]] = refused.get(result["kind"], 0) + 1
        browser.close()
    return {"times": times, "parts": parts, "refused": refused, "fcp": fcp}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--lookups", type=int, default=300, help="cards to measure (>= 200)")
    parser.add_argument("--loads", type=int, default=20, help="page loads for the FCP")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["PERSONKORT_DATA_DIR"] = str(folder / "data")  # one key ring for all
        os.environ["PERSONKORT_DEV_MODE"] = "1"
        started = time.perf_counter()
        store, idents = prepare(args.persons, folder)
        built = time.perf_counter() - started
        env = {
            **os.environ,
            "PERSONKORT_STORE_URL": store,
            "PERSONKORT_LOOKUPS_PER_MINUTE": LOOKUPS_PER_MINUTE,
        }
        port = free_port()
        proc = start(["api.app:create_app", "--factory"], env, port, workers=1)
        try:
            got = drive(f"http://127.0.0.1:{port}", idents, args.lookups, args.loads)
        finally:
            stop(proc)
    times, fcp = got["times"], got["fcp"]
    print(f"embedded default: {args.persons} persons, {len(idents)} cards ({built:.0f} s to build)")
    print(f"chromium {CHROMIUM}, one uvicorn worker, SQLite; load {os.getloadavg()[0]:.2f}")
    print(
        f"Enter -> card painted, {len(times)} lookups of different persons: "
        f"median {statistics.median(times):.1f} ms, p95 {percentile(times, 0.95):.1f} ms, "
        f"max {max(times):.1f} ms"
    )
    request, inserted = got["parts"]["request"], got["parts"]["inserted"]
    if request:
        print(
            f"  of which the POST (request sent to response read, resource timing): "
            f"median {statistics.median(request):.1f} ms, p95 {percentile(request, 0.95):.1f} ms"
        )
    print(
        f"  Enter -> heading inserted: median {statistics.median(inserted):.1f} ms, "
        f"p95 {percentile(inserted, 0.95):.1f} ms (the rest is style, layout and paint)"
    )
    if got["refused"]:
        print(f"looked up but refused by the gate (not counted): {got['refused']}")
    print(
        f"first contentful paint of /, {len(fcp)} loads: median {statistics.median(fcp):.1f} ms,"
        f" max {max(fcp):.1f} ms"
    )
    if len(times) < 200:
        sys.exit("fewer than 200 cards were measured")


if __name__ == "__main__":
    main()
