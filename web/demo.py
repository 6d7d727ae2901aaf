"""The demo caseworkers offered by the development sign-in (development mode only).

Real sign-in is the office's identity provider (docs/web.md); these exist so that a new user
can see every face of the product: state and municipal, several offices, and the special roles.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DemoUser:
    sub: str
    name: str
    employer: str
    office: str
    roles: tuple[str, ...]
    description: str

    @property
    def claims(self) -> dict[str, object]:
        return {
            "sub": self.sub,
            "name": self.name,
            "employer": self.employer,
            "office": self.office,
            "roles": list(self.roles),
        }


DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser(
        "Z100001",
        "Kari Statlig",
        "stat",
        "nav-lillestrom",
        ("veileder",),
        "Statlig veileder, NAV Lillestrøm",
    ),
    DemoUser(
        "K320501",
        "Ola Kommunal",
        "kommune:3205",
        "nav-lillestrom",
        ("veileder",),
        "Kommunal veileder (Lillestrøm kommune), NAV Lillestrøm",
    ),
    DemoUser(
        "K030101",
        "Nina Kommunal",
        "kommune:0301",
        "nav-oslo",
        ("veileder",),
        "Kommunal veileder (Oslo kommune), NAV Oslo",
    ),
    DemoUser(
        "Z100006",
        "Siri Kode6",
        "stat",
        "nav-lillestrom",
        ("veileder", "kode6", "kode7", "skjermet"),
        "Statlig veileder med kode 6-, kode 7- og skjermet-tilgang",
    ),
    DemoUser(
        "Z200001",
        "Frida Forvalter",
        "stat",
        "nav-lillestrom",
        ("forvalter",),
        "Dataforvalter",
    ),
    DemoUser(
        "Z300001",
        "Rune Revisor",
        "stat",
        "nav-lillestrom",
        ("revisor",),
        "Revisor",
    ),
)
BY_SUB = {user.sub: user for user in DEMO_USERS}
