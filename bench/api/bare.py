"""The yardstick: a bare FastAPI endpoint returning a static card of the same size."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI

CARD: dict[str, Any] = json.loads(Path(os.environ["BENCH_CARD_FILE"]).read_text())
app = FastAPI()


@app.post("/api/v1/personkort")
def lookup(body: dict[str, Any]) -> dict[str, Any]:
    return CARD
