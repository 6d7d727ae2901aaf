"""NS 4551-1 (ISO 646-NO): 7-bit Norwegian text where ``[\\]{|}`` stand for ÆØÅæøå."""

from __future__ import annotations

_DECODE = str.maketrans("[\\]{|}", "ÆØÅæøå")


def decode(data: bytes) -> str:
    """Decode NS 4551-1 bytes; raises UnicodeDecodeError on a byte above 0x7F."""
    return data.decode("ascii").translate(_DECODE)
