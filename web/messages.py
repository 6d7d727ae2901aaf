"""What the pages say for each reason code, in plain bokmål.

The services' messages are for the API's clients; a caseworker at the desk reads these. The
gate's own refusals (kode 6, skjermet, own card) carry the policy file's words and are shown
as they are; a code missing here falls back to the service's message.
"""

from __future__ import annotations

MESSAGES: dict[str, str] = {
    "ugyldig_ident": "Det er ikke et gyldig fødselsnummer eller D-nummer (11 siffer).",
    "ukjent_person": "Fant ingen person med dette nummeret som du har tilgang til å se.",
    "mangler_rolle": "Du mangler rollen som trengs for dette.",
    "for_mange_oppslag": "Du har gjort mange oppslag på kort tid. Vent litt og prøv igjen.",
    "lager_utilgjengelig": "Personkortene er ikke tilgjengelige akkurat nå. Prøv igjen om litt.",
    "policy_utilgjengelig": "Tilgangsreglene kan ikke leses akkurat nå. Ingenting er vist.",
    "revisjonslogg_utilgjengelig": (
        "Oppslaget kan ikke logges akkurat nå, og da vises ingenting. Prøv igjen om litt."
    ),
    "formal_mangler": "Oppgi formålet med oppslaget.",
    "formal_for_langt": "Formålet er for langt (høyst 500 tegn).",
    "formal_med_nummer": "Skriv formålet uten fødselsnummer eller andre lange tall.",
    "ikke_verifisert_ident": (
        "Samtykket må registreres på et nummer som Arena, Infotrygd eller Folkeregisteret kjenner."
    ),
    "ugyldig_periode": "Perioden er ugyldig: til-datoen må være etter fra-datoen.",
    "for_lang_periode": "Et samtykke kan gjelde i høyst 12 måneder.",
    "mangler_skjema": "Oppgi skjemareferansen for samtykket.",
    "ugyldig_dato": "Skriv datoen som dd.mm.åååå, for eksempel 01.12.2026.",
    "annet_kort": "Nummeret for samtykket hører ikke til kortet du har åpent. Ingenting er lagret.",
    "ukjent_samtykke": "Fant ikke samtykket ved ditt kontor.",
    "samme_post": "En post kan ikke vurderes mot seg selv.",
    "ukjent_natt": "Fant ikke den natten.",
    "ukjent_policy": "Fant ikke den policyversjonen.",
    "ukjent_hendelse": "Ingen signert sjekkpunkt dekker hendelsen ennå.",
    "csrf_avvist": "Skjemaet kom ikke fra denne økten. Last siden på nytt og prøv igjen.",
    "ikke_innlogget": "Økten er utløpt. Logg inn på nytt.",
}
