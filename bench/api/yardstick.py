"""The second yardstick: a plain FastAPI endpoint doing the least I/O a lookup must do.

Per request it reads one card's JSON by identity number from PostgreSQL and inserts one audit
row, in one transaction committed on its own (no cache, no group commit, no token, no policy,
no hash chain). personkort does more per lookup but has a card cache and shares its audit
commits, so its flat-out rate should at least equal this one's on the same machine in the
same run. The tables are made and filled by ``bench.api.run`` (``fill_yard``):
``yard_card(ident text primary key, body text)`` and
``yard_audit(id bigserial, at timestamptz, ident_hmac text, body text)``.

    BENCH_YARD_URL=postgresql+psycopg://...?options=-csearch_path%3Dbench_yard \\
        uvicorn bench.api.yardstick:app --workers 2
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.responses import Response
from pydantic import BaseModel

# The same pool as the product's default (personkort/store/database.py), so neither side waits
# on connections the other keeps open.
POOL = int(os.environ.get("PERSONKORT_POOL_SIZE", "20"))
engine = sa.create_engine(os.environ["BENCH_YARD_URL"], pool_size=POOL, max_overflow=POOL)
KEY = os.environ.get("BENCH_YARD_KEY", "yardstick-hmac-key").encode()
READ = sa.text("SELECT body FROM yard_card WHERE ident = :ident")
WRITE = sa.text("INSERT INTO yard_audit (at, ident_hmac, body) VALUES (now(), :ident_hmac, :body)")
NOT_FOUND = b'{"status":404,"code":"ukjent_person"}'

app = FastAPI()


class Lookup(BaseModel):
    ident: str
    purpose: str | None = None


@app.post("/api/v1/personkort")
def lookup(request: Lookup) -> Response:
    """Read the card, store the audit row, commit, answer: the card leaves after its row."""
    ident_hmac = hmac.new(KEY, request.ident.encode(), hashlib.sha256).hexdigest()
    trace = uuid.uuid4().hex
    with engine.begin() as conn:
        card = conn.execute(READ, {"ident": request.ident}).scalar()
        event = {"kind": "lookup", "found": card is not None, "trace_id": trace}
        conn.execute(WRITE, {"ident_hmac": ident_hmac, "body": json.dumps(event)})
    if card is None:
        return Response(NOT_FOUND, status_code=404, media_type="application/problem+json")
    return Response(card, media_type="application/json")
