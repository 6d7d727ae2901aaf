"""Secrets: outside development mode nothing starts without configured keys (the API, ``serve``,
the night); development keys are one set for every process that starts at once; a short JWT
secret is refused in every mode; every development start warns."""

from __future__ import annotations

import base64
import logging
import multiprocessing
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from api.app import create_app
from api.auth import KeyConfigError, TokenVerifier, dev_secret
from api.middleware import check_keys
from api.settings import Settings
from personkort.audit.keys import audit_keys
from personkort.devkeys import MissingKeyError
from personkort.store.crypto import key_ring
from tests.api_server import free_port

ROOT = Path(__file__).resolve().parents[2]
KEY_SETTINGS = (
    "PERSONKORT_JWT_SECRET",
    "PERSONKORT_JWT_JWKS_FILE",
    "PERSONKORT_AUDIT_KEY",
    "PERSONKORT_AUDIT_SIGNING_KEY",
    "PERSONKORT_STORE_KEYS",
)


def _b64() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No development mode and no key configured."""
    monkeypatch.delenv("PERSONKORT_DEV_MODE", raising=False)
    for name in KEY_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _production_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KEY_SETTINGS}
    env.pop("PERSONKORT_DEV_MODE", None)
    env["PERSONKORT_DATA_DIR"] = str(tmp_path / "data")
    return env


def _keys_of_one_process(data_dir: str, barrier: object) -> tuple[str, str, str, str]:
    """What one freshly started process ends up with (all starting at the same moment)."""
    barrier.wait()  # type: ignore[attr-defined]
    settings = Settings(data_dir=data_dir, dev_mode=True)
    keys = audit_keys(data_dir)
    ring = key_ring(data_dir)
    return (
        dev_secret(settings),
        base64.b64encode(keys.secret).decode(),
        keys.key_id,
        base64.b64encode(ring.keys[0][1]).decode(),
    )


def test_concurrent_starts_share_one_set_of_development_keys(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    workers = 8
    for trial in range(3):
        data_dir = str(tmp_path / f"trial{trial}")
        barrier = context.Manager().Barrier(workers)
        with context.Pool(workers) as pool:
            results = pool.starmap(_keys_of_one_process, [(data_dir, barrier)] * workers)
        assert len(set(results)) == 1, f"trial {trial}: {len(set(results))} different key sets"
        folder = Path(data_dir) / "dev-keys"
        assert sorted(p.name for p in folder.iterdir()) == [
            "audit-key",
            "audit-signing",
            "jwt-secret",
            "store-key",
        ]  # no candidate left behind
        assert all(p.stat().st_mode & 0o077 == 0 for p in folder.iterdir())


def test_the_api_refuses_to_start_without_keys(
    production: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = Settings(store_url=f"sqlite:///{tmp_path / 's.sqlite'}", data_dir=str(tmp_path))
    assert settings.dev_mode is False
    with pytest.raises(MissingKeyError) as refused:
        check_keys(settings)
    for name in (*KEY_SETTINGS[2:], "PERSONKORT_JWT_SECRET", "PERSONKORT_JWT_JWKS_FILE"):
        assert name in str(refused.value)
    with pytest.raises(MissingKeyError, match="PERSONKORT_AUDIT_KEY"):
        create_app(settings)
    # Everything but the store keys: still refused at start, naming them.
    production.setenv("PERSONKORT_AUDIT_KEY", _b64())
    production.setenv("PERSONKORT_AUDIT_SIGNING_KEY", _b64())
    settings = Settings(store_url=settings.store_url, data_dir=str(tmp_path), jwt_secret="s" * 32)
    with pytest.raises(MissingKeyError, match="PERSONKORT_STORE_KEYS"):
        create_app(settings)
    production.setenv("PERSONKORT_STORE_KEYS", f"k1:{_b64()}")
    create_app(settings)  # all configured: starts
    assert not (tmp_path / "dev-keys").exists()  # and no development key was made on the way


def test_a_short_jwt_secret_is_refused_in_every_mode(tmp_path: Path) -> None:
    for dev_mode in (True, False):
        settings = Settings(data_dir=str(tmp_path), jwt_secret="x" * 31, dev_mode=dev_mode)
        with pytest.raises(KeyConfigError, match="at least 32 bytes"):
            TokenVerifier(settings)
        with pytest.raises(KeyConfigError):
            check_keys(settings)
    assert TokenVerifier(Settings(data_dir=str(tmp_path), jwt_secret="x" * 32)).secret


def test_the_store_and_audit_keys_are_never_made_up_outside_development_mode(
    production: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(MissingKeyError, match="PERSONKORT_STORE_KEYS"):
        key_ring(str(tmp_path))
    with pytest.raises(MissingKeyError, match="PERSONKORT_AUDIT_KEY"):
        audit_keys(str(tmp_path))
    assert not (tmp_path / "dev-keys").exists()


def test_every_development_start_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(store_url=f"sqlite:///{tmp_path / 's.sqlite'}", data_dir=str(tmp_path))
    assert settings.dev_mode  # tests/conftest.py sets PERSONKORT_DEV_MODE=1
    for _ in range(2):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            create_app(settings)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("development keys in use" in m for m in warnings), warnings


def test_serve_and_night_exit_non_zero_without_keys(tmp_path: Path, sample: Path) -> None:
    env = _production_env(tmp_path)
    cli = str(ROOT / ".venv" / "bin" / "personkort")
    serve = subprocess.run(
        [cli, "serve", "--port", str(free_port()), "--store", f"sqlite:///{tmp_path / 's.db'}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert serve.returncode == 2, serve.stderr
    assert "PERSONKORT_JWT_SECRET" in serve.stderr and "Traceback" not in serve.stderr
    night = subprocess.run(
        [cli, "night", str(sample / "night1"), "--store", f"sqlite:///{tmp_path / 'n.db'}"],
        env={**env, "PERSONKORT_AUDIT_KEY": _b64(), "PERSONKORT_AUDIT_SIGNING_KEY": _b64()},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert night.returncode != 0
    assert "PERSONKORT_STORE_KEYS" in night.stderr and "Traceback" not in night.stderr
    assert not (tmp_path / "data" / "dev-keys").exists()


def test_token_minting_works_in_development_mode(tmp_path: Path) -> None:
    env = {**os.environ, "PERSONKORT_DEV_MODE": "1", "PERSONKORT_DATA_DIR": str(tmp_path)}
    env.pop("PERSONKORT_JWT_SECRET", None)
    args = ["token", "--sub", "Z1", "--employer", "stat", "--office", "nav-oslo"]
    args += ["--roles", "veileder", "--pid", "458847 14684"]
    minted = subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert minted.returncode == 0, minted.stderr
    claims = TokenVerifier(Settings(data_dir=str(tmp_path), dev_mode=True)).verify(
        minted.stdout.strip()
    )
    assert claims["pid"] == "45884714684" and claims["sub"] == "Z1"
