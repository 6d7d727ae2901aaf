"""Settings the API reads, all from ``PERSONKORT_*`` environment variables (see .env.example)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PERSONKORT_", extra="ignore")

    # Development mode: keys that are not configured are made once under data_dir/dev-keys and
    # shared by every process, with a warning at every start. Off: a missing key stops the start.
    dev_mode: bool = False
    store_url: str | None = None  # default: the embedded SQLite file
    policy_dir: str | None = None  # default: policies/default
    data_dir: str = "data"  # development keys live under it
    # Bearer tokens: HS256 with a shared secret, or asymmetric keys from a JWKS document.
    jwt_issuer: str = "personkort-dev"
    jwt_audience: str = "personkort"
    jwt_secret: str | None = None  # HS256 secret, at least 32 bytes; unset: JWKS or dev mode
    jwt_jwks_file: str | None = None  # a JWKS document (RS256 / ES256 / EdDSA public keys)
    jwt_leeway_seconds: int = 30
    # A token's lifetime (exp - iat, and exp - now) may not exceed this: a stolen token ages out.
    token_max_lifetime_seconds: int = 43_200
    # Requests: the largest body and the largest total of header bytes accepted (413 / 431).
    max_body_bytes: int = 65_536
    # The Folkeregister's event batches (token role ``folkeregister`` only) may be this large.
    feed_max_body_bytes: int = 4_194_304
    max_header_bytes: int = 16_384
    # Card lookups one caseworker may make per minute (429 beyond): mass reading is audited.
    lookups_per_minute: int = 120
    # A signed audit checkpoint at least this often while events arrive (and at shutdown).
    audit_checkpoint_seconds: int = 60
    # The web pages' CSRF key is derived from this (else from the JWT secret): set it when tokens
    # come from a JWKS (an identity provider) and the API runs several workers.
    session_secret: str | None = None
    # Where the stewards' page links each night's Airflow run (empty: no link).
    airflow_url: str = "http://localhost:8080"
    # The longest a lookup waits for the store (503 beyond); on PostgreSQL also the connect,
    # statement and (half of it) lock timeouts of the API's connections.
    store_timeout_seconds: float = 3.0
    # Cards of the served night kept in each API process (0: none). See personkort/store/served.py.
    card_cache_size: int = 10_000  # cards, each about four cache entries
