"""The Arena reader process dies with the night that started it (issue 12, item 6).

On the main before, a SIGKILL during the Arena read left the reader process blocked for ever
(160 MB each).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

PERSONKORT = str(Path(sys.executable).parent / "personkort")


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(
    not Path("/proc").is_dir() or (os.cpu_count() or 1) < 2, reason="Linux, 2 cores"
)
def test_a_killed_night_takes_its_arena_reader_with_it(tmp_path: Path) -> None:
    from simulator import simulate

    simulate(40_000, 3, 1, tmp_path / "sim")
    env = {**os.environ, "PERSONKORT_DATA_DIR": str(tmp_path / "data")}
    night = subprocess.Popen(
        [
            PERSONKORT,
            "night",
            str(tmp_path / "sim" / "night1"),
            "--store",
            f"sqlite:///{tmp_path / 'store.sqlite'}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    readers: set[int] = set()
    while not readers:  # the reader is started once the drop is listed
        assert night.poll() is None, "the night ended before its reader could be seen"
        assert time.monotonic() < deadline
        readers = _children(night.pid)
        time.sleep(0.02)
    time.sleep(0.3)  # well inside the Arena read
    night.send_signal(signal.SIGKILL)
    night.wait(timeout=10)
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in readers):
        assert time.monotonic() < deadline, f"reader processes outlived the night: {readers}"
        time.sleep(0.1)
