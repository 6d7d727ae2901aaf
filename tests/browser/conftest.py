"""Browser tests: Debian's chromium driven by Playwright (``executable_path``; never
``playwright install``) against the real app served by uvicorn over a real store.

Every page a test opens is watched: a request to any host but the test server fails the test,
and so does a Content-Security-Policy violation or a script error. ``axe`` runs the vendored
axe-core on the page as it is now; ``shoot`` saves a screenshot (into ``docs/screenshots`` when
``PERSONKORT_SCREENSHOTS`` names that folder).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from adapters import read_drop
from adapters.drop import fingerprint
from api.app import create_app
from api.settings import Settings
from personkort.nightly import run_night
from personkort.store import open_engine
from tests.api_server import serve
from tests.conftest import SAMPLE, pg_schema, schema_url

CHROMIUM = os.environ.get("PERSONKORT_CHROMIUM", "/usr/bin/chromium")
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# Flags for a closed network (no background calls home) and a root user in a container.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def _playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the dev extra installs it
        pytest.fail("playwright is not installed: run `make test` (it sets up .venv)")
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(
            f"chromium not found at {CHROMIUM}: `make test` installs Debian's chromium "
            "(apt-get install chromium), or set PERSONKORT_CHROMIUM"
        )
    return sync_playwright


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    with _playwright()() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Site:
    """The served app, its store, and what a test needs to drive it."""

    url: str
    settings: Settings
    engine: sa.Engine
    store_url: str
    backend: str

    def run_night(self, name: str) -> None:
        drop = SAMPLE / name
        run_night(self.engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))


def _store(backend: str, folder: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'store.sqlite'}"
        return
    for schema in pg_schema("pkweb"):
        yield schema_url(schema)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """A fresh store with night 1 served, and the app over it, for one test module."""
    folder = tmp_path_factory.mktemp(f"site-{request.param}")
    for store_url in _store(request.param, folder):
        settings = Settings(store_url=store_url, data_dir=str(folder / "data"), dev_mode=True)
        engine = open_engine(store_url)
        built = Site("", settings, engine, store_url, request.param)
        built.run_night("night1")
        with serve(create_app(settings)) as url:
            built.url = url
            yield built
        engine.dispose()


@dataclass
class Watch:
    """What a page asked for and complained about while a test drove it."""

    origin: str
    foreign: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    """A fresh browser context (no cookies) on the site; fails the test on any request to
    another host, any CSP violation and any uncaught script error."""
    context = browser.new_context(base_url=site.url, locale="nb-NO", timezone_id="Europe/Oslo")
    watch = Watch(site.url)

    def guard(route: Any) -> None:
        url = route.request.url
        if url.startswith(site.url + "/") or url == site.url:
            route.continue_()
        else:
            watch.foreign.append(url)
            route.abort()

    context.route("**/*", guard)
    tab = context.new_page()
    tab.on(
        "console",
        lambda m: (
            watch.errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    tab.on("pageerror", lambda e: watch.errors.append(str(e)))
    tab.watch = watch
    yield tab
    context.close()
    assert not watch.foreign, f"the page requested other hosts: {watch.foreign}"
    assert not watch.errors, f"script errors or CSP violations: {watch.errors}"


def sign_in(page: Any, sub: str) -> None:
    """Sign in as a demo caseworker with the keyboard alone: the radio, Space, Enter."""
    page.goto("/logg-inn")
    radio = page.locator(f"#bruker-{sub}")
    radio.focus()
    page.keyboard.press("Space")
    with page.expect_navigation():
        page.keyboard.press("Enter")


def axe(page: Any, context: str = "document") -> list[dict[str, Any]]:
    """WCAG 2.1 A/AA violations on the page as it is now (the vendored axe-core)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
    result = page.evaluate(
        "async ([ctx, tags]) => (await axe.run(ctx === 'document' ? document : ctx, "
        "{runOnly: {type: 'tag', values: tags}})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help, "
        "nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))",
        [context, WCAG],
    )
    return list(result)


def assert_accessible(page: Any, state: str) -> None:
    violations = axe(page)
    assert not violations, f"axe-core, {state}: {json.dumps(violations, indent=1)}"


def shoot(page: Any, name: str, tmp: Path | None = None) -> Path:
    """A full-page screenshot: into PERSONKORT_SCREENSHOTS when set (docs/screenshots),
    else a temporary folder (the picture is still made, so a broken render fails here)."""
    folder = Path(os.environ.get("PERSONKORT_SCREENSHOTS") or (tmp or Path("/tmp")) / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000
    return path
