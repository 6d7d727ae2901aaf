"""Settings the API reads, all from ``PERSONKORT_*`` environment variables (see .env.example)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PERSONKORT_", extra="ignore")

    store_url: str | None = None  # default: the embedded SQLite file
    policy_dir: str | None = None  # default: policies/default
    data_dir: str = "data"  # development keys live under it
    # Bearer tokens: HS256 with a shared secret, or asymmetric keys from a JWKS document.
    jwt_issuer: str = "personkort-dev"
    jwt_audience: str = "personkort"
    jwt_secret: str | None = None  # HS256 secret; unset: a development secret under data_dir
    jwt_jwks_file: str | None = None  # a JWKS document (RS256 / ES256 / EdDSA public keys)
    jwt_leeway_seconds: int = 30
    # Cards of the served night kept in each API process (0: none). See personkort/store/served.py.
    card_cache_size: int = 20_000
