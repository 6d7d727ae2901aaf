"""The ``personkort`` command line: the edge where adapters, simulator and core meet."""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from adapters.drop import read_drop, sources
from personkort.records import Extract

app = typer.Typer(
    help="personkort: one person card per real person, from three legacy registers.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True, soft_wrap=True)
out = Console(width=None if sys.stdout.isatty() else 120)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        refresh_per_second=2,  # its redrawing thread competes with the night for the GIL
    )


@app.command()
def read(
    drop_dir: Annotated[Path, typer.Argument(help="A night's drop folder.")],
    quarantine: Annotated[
        Path | None, typer.Option(help="Write quarantined records as CSV register,location,reason.")
    ] = None,
    findings: Annotated[
        Path | None, typer.Option(help="Write data-quality findings as CSV.")
    ] = None,
    arena_url: Annotated[
        str | None, typer.Option(help="Read Arena from this database URL instead of the folder.")
    ] = None,
) -> None:
    """Read a drop folder through every adapter and print per-source counts."""
    if not drop_dir.is_dir():
        console.print(f"[red]error:[/] drop folder {drop_dir} does not exist")
        raise typer.Exit(2)
    total = len(sources(drop_dir))
    with _progress() as bar:
        task = bar.add_task("reading", total=total)

        def step(name: str) -> None:
            bar.update(task, advance=1, description=f"reading {name}")

        extract = read_drop(drop_dir, arena_url=arena_url, progress=step)
    out.print(counts_table(extract))
    if quarantine is not None:
        write_quarantine(extract, quarantine)
        console.print(f"quarantine: {len(extract.quarantine)} records written to {quarantine}")
    if findings is not None:
        write_findings(extract, findings)
        console.print(f"findings: {len(extract.findings)} written to {findings}")
    for refusal in extract.refusals:
        console.print(f"[red]refused:[/] {refusal.register} {refusal.source}: {refusal.reason}")
    if extract.refusals:
        raise typer.Exit(1)


def counts_table(extract: Extract) -> Table:
    """Per-source counts, with a subtotal per register."""
    table = Table(title="records per source")
    for column in ("register", "source", "read", "accepted", "quarantined", "findings"):
        table.add_column(column, justify="left" if column in ("register", "source") else "right")
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for c in extract.counts:
        numbers = [c.read, c.accepted, c.quarantined, c.findings]
        table.add_row(c.register.value, c.source, *map(str, numbers))
        totals[c.register.value] = [
            a + b for a, b in zip(totals[c.register.value], numbers, strict=True)
        ]
    table.add_section()
    for register, numbers in totals.items():
        table.add_row(register, "[b]all[/]", *map(str, numbers))
    return table


def write_quarantine(extract: Extract, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["register", "location", "reason"])
        for q in extract.quarantine:
            writer.writerow([q.register.value, q.location, q.reason])


def write_findings(extract: Extract, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["register", "location", "kind", "detail"])
        for finding in extract.findings:
            writer.writerow(
                [finding.register.value, finding.location, finding.kind, finding.detail]
            )


@app.command()
def simulate(
    persons: Annotated[int, typer.Option(min=1, help="How many synthetic people.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 1,
    nights: Annotated[int, typer.Option(min=1, help="How many consecutive nights.")] = 2,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for night1/, night2/, ...")] = Path(
        "data/registers"
    ),
    feed: Annotated[
        bool, typer.Option("--feed/--no-feed", help="Also the Folkeregister feed and its events.")
    ] = True,
) -> None:
    """Write simulated register extracts (with an answer key) for a synthetic population."""
    from simulator import simulate as run_simulation

    with _progress() as bar:
        tasks: dict[str, int] = {}

        def step(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        summary = run_simulation(persons, seed, nights, out_dir, progress=step, feed=feed)
    console.print(f"wrote {nights} night(s) for {persons} persons to {out_dir}")
    out.print(summary)


def _first_unserved(drops: list[Path], store: str) -> int:
    """The index of the first drop after the one the store serves: a demo run again in the same
    folder serves what it served (an older drop is never published over a newer one)."""
    from adapters.drop import fingerprint
    from personkort.nightly import already_served
    from personkort.store import open_engine

    engine = open_engine(store)
    try:
        for index in range(len(drops) - 1, -1, -1):
            if already_served(engine, fingerprint(drops[index])) is not None:
                console.print(f"{drops[index].name} is served already: kept as it is")
                return index + 1
        return 0
    finally:
        engine.dispose()


@app.command()
def demo(
    persons: Annotated[
        int, typer.Option(min=100, help="Size of the simulated population.")
    ] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed for the simulated registers.")] = 1,
    out_dir: Annotated[Path, typer.Option("--out", help="Where the demo keeps its data.")] = Path(
        "data/demo"
    ),
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the API when the nights are done.")
    ] = True,
    host: Annotated[str, typer.Option(help="Interface to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8000,
) -> None:
    """Simulate two nights of registers, run both nights into the embedded store, serve the API.

    Registers are simulated once per (persons, seed) and kept under ``--out``; the store is
    ``--out``/personkort.sqlite unless PERSONKORT_STORE_URL says otherwise. The demo runs in
    development mode (development keys, with a warning) unless PERSONKORT_DEV_MODE says no."""
    os.environ.setdefault("PERSONKORT_DEV_MODE", "1")
    registers = out_dir / f"registers-{persons}-{seed}"
    if not (registers / "night2" / "truth" / "links.csv").exists():
        simulate(persons=persons, seed=seed, nights=2, out_dir=registers)
    store = os.environ.get("PERSONKORT_STORE_URL") or f"sqlite:///{out_dir / 'personkort.sqlite'}"
    drops = sorted(p for p in registers.iterdir() if p.name.startswith("night"))
    for drop in drops[_first_unserved(drops, store) :]:
        out.rule(f"{drop.name}: {drop}")
        night(drop, store=store, arena_url=None, report=out_dir / f"{drop.name}-report.json")
    links(out_file=out_dir / "links.csv", store=store)
    console.print(f"store: {store}")
    if serve_after:
        token_hint = (
            "PERSONKORT_DEV_MODE=1 .venv/bin/personkort token --sub Z123456 --employer stat"
            " --office nav-oslo --roles veileder"
        )
        console.print(
            f"open http://{host}:{port}/ and sign in as a demo caseworker, steward or auditor"
        )
        console.print(f"the API: http://{host}:{port}/api/v1  (a token: {token_hint})")
        serve(store=store, host=host, port=port, workers=1)


StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store", help="Store URL (default: PERSONKORT_STORE_URL or data/personkort.sqlite)."
    ),
]


@app.command()
def night(
    drop_dir: Annotated[Path, typer.Argument(help="The night's drop folder.")],
    store: StoreOption = None,
    arena_url: Annotated[
        str | None, typer.Option(help="Read Arena from this database URL instead of the folder.")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write the night's run report (JSON).")
    ] = None,
    accept_source: Annotated[
        list[str] | None,
        typer.Option(
            help="A source accepted as missing, empty or short tonight (e.g. kommune:flyt_0301);"
            " needs --accepted-by and --accept-reason; audited."
        ),
    ] = None,
    accepted_by: Annotated[str, typer.Option(help="The accepting steward's id.")] = "",
    accept_reason: Annotated[str, typer.Option(help="Why the sources are accepted.")] = "",
) -> None:
    """Read, validate, reconcile and publish one night. A refused or failed night leaves the
    previous night's cards served; rerunning a served night changes nothing."""
    from adapters.drop import fingerprint
    from personkort.gates import GateConfig, SourceAcceptance
    from personkort.nightly import already_served, run_night
    from personkort.store import NightBusy, StoreError, open_engine
    from personkort.store.crypto import key_ring
    from personkort.store.feed import known_digests

    if not drop_dir.is_dir():
        console.print(f"[red]error:[/] drop folder {drop_dir} does not exist")
        raise typer.Exit(2)
    try:
        accepted = (
            SourceAcceptance(frozenset(accept_source), accepted_by, accept_reason)
            if accept_source
            else None
        )
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc} (--accepted-by, --accept-reason)")
        raise typer.Exit(2) from None
    key_ring()  # the store keys, before any work: outside development mode never made up
    engine = open_engine(store)
    started = time.perf_counter()
    # the drop's digest (most of it the snapshot's) on the other core, while the store's
    # line digests load: hashing a file lets go of the interpreter (a rerun of a served drop
    # loads them for nothing, a few seconds at a million persons)
    with ThreadPoolExecutor(1, thread_name_prefix="fingerprint") as pool:
        printing = pool.submit(fingerprint, drop_dir)
        known = known_digests(engine)  # read once: the night compares the snapshot with them
        map_seconds = time.perf_counter() - started  # the read's, as before; not the hashing
        drop_print = printing.result()
    if (served := already_served(engine, drop_print)) is not None:  # before reading anything
        console.print(f"[yellow]unchanged[/]: this drop is already the served night ({served})")
        return
    with _progress() as bar:
        task = bar.add_task("reading", total=len(sources(drop_dir)))

        def step(name: str) -> None:
            bar.update(task, advance=1, description=f"reading {name}")

        reading = time.perf_counter()
        extract = read_drop(
            drop_dir,
            arena_url=arena_url,
            progress=step,
            parallel=True,
            feed_known=known.keys,  # unchanged Folkeregister lines are not parsed
        )
        read_seconds = map_seconds + time.perf_counter() - reading
        bar.update(task, description="reconciling and writing")
        try:
            outcome = run_night(
                engine,
                extract,
                drop_dir=str(drop_dir.resolve()),
                fingerprint=drop_print,
                read_seconds=read_seconds,
                gates=GateConfig(accepted=accepted),
                feed_digests=known,
            )
        except NightBusy as exc:
            console.print(f"[red]busy[/]: {exc}; nothing was written")
            raise typer.Exit(3) from None
        except (StoreError, OSError) as exc:
            console.print(f"[red]failed[/]: {store_failure(exc)}")
            raise typer.Exit(4) from None
    out.print(counts_table(extract))
    summary = {k: v for k, v in outcome.counts.items() if k != "sources"}
    for key, value in summary.items():
        out.print(f"  {key}: {value}")
    if report is not None and outcome.report is not None:
        report.write_text(json.dumps(outcome.report, ensure_ascii=False, indent=1))
        console.print(f"run report written to {report}")
    colour = {"published": "green", "unchanged": "yellow"}.get(outcome.status, "red")
    console.print(f"[{colour}]{outcome.status}[/]: {outcome.message}")
    if outcome.status not in ("published", "unchanged"):
        raise typer.Exit(1)


@app.command("folkeregister-innboks")
def folkeregister_inbox(
    inbox: Annotated[Path, typer.Argument(help="The Folkeregister's events inbox folder.")],
    store: StoreOption = None,
) -> None:
    """Read the events inbox once (as the personkort_folkeregister DAG does every five minutes):
    every hendelser_*.jsonl stored once by hendelseId and moved to lest/. Exit 1 when a file
    or the folder could not be read (the store records it; the cards say so)."""
    from personkort.store.crypto import key_ring
    from pipeline.inbox import read_inbox, summary_text

    key_ring()  # the store keys, before any work: outside development mode never made up
    summary = read_inbox(store, str(inbox))
    out.print(summary_text(summary), markup=False, highlight=False)
    if summary["status"] != "read":
        raise typer.Exit(1)


@app.command()
def links(
    out_file: Annotated[Path, typer.Option("--out", help="CSV file to write.")],
    store: StoreOption = None,
) -> None:
    """Export register,source_key,person_id for every source record on a served card."""
    from personkort.store import open_engine, queries

    rows = _write_csv(
        out_file, ["register", "source_key", "person_id"], queries.links(open_engine(store))
    )
    console.print(f"{rows} links written to {out_file}")


@app.command("quarantine")
def quarantine_export(
    out_file: Annotated[Path, typer.Option("--out", help="CSV file to write.")],
    store: StoreOption = None,
    night_id: Annotated[
        int | None, typer.Option("--night", help="Night id (default: served).")
    ] = None,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw", help="Add the raw lines, decrypted: personal data in clear (stewards only)."
        ),
    ] = False,
) -> None:
    """Export the served (or a given) night's quarantine as register,location,reason."""
    from personkort.store import open_engine
    from personkort.store.quarantine import iter_quarantine

    header = ["register", "location", "reason"]
    if raw:
        header.append("raw")
        console.print(
            f"[yellow]warning:[/] {out_file} holds the quarantined raw lines in clear "
            "(identity numbers, diagnoses, free text, addresses): keep it to yourself and "
            "delete it when done"
        )
        out_file.touch(mode=0o600)
        out_file.chmod(0o600)
    items = iter_quarantine(open_engine(store), night_id, with_raw=raw)
    rows = _write_csv(
        out_file,
        header,
        ((i.register, i.location, i.reason, *((i.raw,) if raw else ())) for i in items),
    )
    console.print(f"{rows} quarantined records written to {out_file}")


def _write_csv(path: Path, header: list[str], rows: Iterable[Sequence[object]]) -> int:
    count = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


@app.command()
def token(
    sub: Annotated[str, typer.Option(help="The caseworker's ident, e.g. Z123456.")],
    employer: Annotated[str, typer.Option(help="stat or kommune:KKKK")],
    office: Annotated[str, typer.Option(help="The NAV office, e.g. nav-oslo.")],
    roles: Annotated[str, typer.Option(help="Comma-separated: veileder,kode6,kode7,...")],
    pid: Annotated[str | None, typer.Option(help="The caseworker's own identity number.")] = None,
    hours: Annotated[
        int, typer.Option(min=1, max=24, help="Lifetime in hours (at most the API's maximum).")
    ] = 8,
) -> None:
    """Mint a development bearer token (HS256, the configured key) and print it alone."""
    from api.auth import mint
    from api.settings import Settings
    from personkort.ident import IdentError, parse

    claims: dict[str, object] = {
        "sub": sub,
        "employer": employer,
        "office": office,
        "roles": [r.strip() for r in roles.split(",") if r.strip()],
    }
    if pid:
        try:
            claims["pid"] = parse(pid).value
        except IdentError:
            console.print("[red]error:[/] --pid is not a valid identity number")
            raise typer.Exit(2) from None
    try:
        print(mint(Settings(), claims, hours * 3600))
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None


@app.command()
def serve(
    store: StoreOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Serve the API and the caseworkers' page (uvicorn). Outside development mode it refuses
    to start without configured keys (before any worker starts)."""
    import uvicorn

    from api.middleware import check_keys
    from api.settings import Settings
    from personkort.store.crypto import key_ring

    if store:
        os.environ["PERSONKORT_STORE_URL"] = store
    check_keys(Settings(), key_ring)  # development keys are made here, before the workers start
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="info",
    )


audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(store: StoreOption = None) -> None:
    """Check the whole hash chain and every signed checkpoint; name the first broken event."""
    from personkort.audit import audit_keys, verify
    from personkort.store import open_engine

    result = verify(open_engine(store), audit_keys())
    if result.ok:
        out.print(f"ok: {result.events} events, {result.checkpoints} checkpoints verified")
        return
    console.print(f"[red]broken at event {result.first_bad_seq}:[/] {result.problem}")
    raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint(store: StoreOption = None) -> None:
    """Sign a checkpoint over every event so far."""
    from personkort.audit import AuditLog
    from personkort.store import open_engine

    made = AuditLog.from_settings(open_engine(store)).checkpoint()
    out.print(f"checkpoint at {made['tree_size']} events" if made else "nothing new to sign")


def store_failure(exc: BaseException) -> str:
    """What a night that the store could not take says to the operator: the kind of failure
    in words, never the database's message (it quotes the rows it failed on)."""
    text = str(getattr(exc, "orig", exc)).lower()
    if "disk is full" in text or "no space left" in text or getattr(exc, "errno", None) == 28:
        what = "the disk is full"
    else:
        what = f"the store could not be written ({type(exc).__name__})"
    return (
        f"{what}. Nothing of tonight's night is published: yesterday's cards are still served, "
        "and the next night rolls back what this one wrote. Free space (or fix the store), then "
        "run the night again."
    )


def main() -> None:
    """Console-script entry point. A missing key (outside development mode) is a clear message
    and exit code 2, not a traceback."""
    from personkort.devkeys import MissingKeyError

    try:
        app(prog_name="personkort")
    except MissingKeyError as exc:
        console.print(f"[red]error:[/] {exc}")
        sys.exit(2)


if __name__ == "__main__":
    sys.exit(main())
