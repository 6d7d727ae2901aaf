"""Register adapters: each turns one legacy register's extract into canonical records.

Every adapter reads its source exactly as the interface agreement (``shared/spec/registers.md``)
describes it, validates at the boundary with a pandera schema, and quarantines every record it
cannot read with its source location and reason. Records in = accepted + quarantined, per source,
checked by the adapter itself.
"""

from adapters.arena import read_arena
from adapters.boundary import CountMismatch, RefusedSource
from adapters.drop import read_drop
from adapters.flyt import read_flyt
from adapters.infotrygd import read_infotrygd
from adapters.sosio import read_sosio

__all__ = [
    "CountMismatch",
    "RefusedSource",
    "read_arena",
    "read_drop",
    "read_flyt",
    "read_infotrygd",
    "read_sosio",
]
