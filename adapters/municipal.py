"""What the two municipal systems share: file names, service codes and the client's card record.

A municipality uses exactly one of Sosio and Flyt; each file is one municipality's extract, and
that municipality owns every record in it.
"""

from __future__ import annotations

import re
from pathlib import Path

FILE_PATTERN = re.compile(r"^(sosio|flyt)_(\d{4})_(\d{8})\.(csv|jsonl)$")

SOSIO_SERVICES = {
    "Økonomisk sosialhjelp": "OKSOS",
    "Kvalifiseringsprogrammet": "KVP",
    "Midlertidig botilbud": "BOLIG",
    "Rustiltak": "RUS",
    "Økonomisk rådgivning": "GJELD",
}


def municipality_of(path: Path, system: str) -> str:
    """The owning municipality from the file name (``sosio_KKKK_YYYYMMDD.csv``)."""
    match = FILE_PATTERN.match(path.name)
    if not match or match.group(1) != system:
        raise ValueError(f"{path.name} is not a {system} file name ({system}_KKKK_YYYYMMDD)")
    return match.group(2)


def source_name(system: str, kommune: str) -> str:
    """The prefix of a municipal quarantine location: ``sosio_KKKK``."""
    return f"{system}_{kommune}"
