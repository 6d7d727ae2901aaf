"""Tokens checked against the public keys of a JWKS document (EdDSA), over real HTTP."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from adapters import read_drop
from adapters.drop import fingerprint
from api.app import create_app
from api.settings import Settings
from personkort.nightly import run_night
from personkort.store import open_engine
from tests.api_server import serve

LUND = "27905340064"


def test_tokens_from_a_jwks_document(store_url: str, tmp_path: Path, sample: Path) -> None:
    key = Ed25519PrivateKey.generate()
    jwk = json.loads(OKPAlgorithm.to_jwk(key.public_key()))
    (tmp_path / "jwks.json").write_text(
        json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "EdDSA"}]})
    )
    settings = Settings(
        store_url=store_url,
        data_dir=str(tmp_path / "data"),
        jwt_jwks_file=str(tmp_path / "jwks.json"),
    )
    engine = open_engine(store_url)
    drop = sample / "night1"
    run_night(engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))
    claims = {
        "sub": "Z1",
        "employer": "stat",
        "office": "nav-oslo",
        "roles": ["veileder"],
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "exp": int(time.time()) + 600,
    }
    good = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": "k1"})
    stranger = jwt.encode(
        claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "k1"}
    )
    unknown_kid = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": "k2"})
    hs256 = jwt.encode(claims, "x" * 48, algorithm="HS256", headers={"kid": "k1"})
    too_long = jwt.encode(  # no iat: exp itself may be at most the maximum lifetime ahead
        {**claims, "exp": int(time.time()) + settings.token_max_lifetime_seconds + 3600},
        key,
        algorithm="EdDSA",
        headers={"kid": "k1"},
    )
    with serve(create_app(settings)) as url:

        def status(token: str) -> int:
            return httpx.post(
                f"{url}/api/v1/personkort",
                json={"ident": LUND},
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            ).status_code

        assert status(good) == 200
        assert status(stranger) == 401
        assert status(unknown_kid) == 401
        assert status(hs256) == 401
        assert status(too_long) == 401
