"""pandera schemas at the boundary of every adapter.

Adapters parse each raw value into its type (a date that does not exist or an amount like
``ca 5000`` is rejected there); these schemas then validate the parsed rows together: required
parts present, codes from the agreed code lists, formats of numbers like postnr. Lazy validation
reports every failing row of a source in one run, and each failure becomes a quarantine reason.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
from pandera.api.polars.model_config import BaseConfig
from pandera.typing.polars import Series

from adapters import limits

_DIGITS4 = r"^\d{4}$"
_DIGITS11 = r"^\d{11}$"

SAKSKODER = ["DAGP", "AAP", "TILTPENG"]
VEDTAKSTATUSER = ["IVERK", "AVSLU"]
INFOTRYGD_STONADSKODER = ["SP", "UF", "AP", "BT", "EF", "SH"]
MUNICIPAL_SERVICES = ["OKSOS", "KVP", "BOLIG", "RUS", "GJELD"]


class _Strict(BaseConfig):
    strict = True  # a column the adapter did not mean to produce is a bug


def _period_ok(data: pa.PolarsData, start: str, end: str) -> pl.LazyFrame:
    return data.lazyframe.select(
        pl.col(end).is_null() | pl.col(start).is_null() | (pl.col(end) >= pl.col(start))
    )


class ArenaPerson(pa.DataFrameModel):
    PERSON_ID: Series[pl.Int64] = pa.Field(ge=1, unique=True)
    FODSELSNR: Series[pl.String] = pa.Field(nullable=True, str_matches=_DIGITS11)
    FORNAVN: Series[pl.String] = pa.Field(str_length={"min_value": 1})
    MELLOMNAVN: Series[pl.String] = pa.Field(nullable=True)
    ETTERNAVN: Series[pl.String] = pa.Field(str_length={"min_value": 1})
    FODSELSDATO: Series[pl.Date] = pa.Field(nullable=True)
    POSTNR: Series[pl.String] = pa.Field(nullable=True, str_matches=_DIGITS4)
    KOMMUNENR: Series[pl.String] = pa.Field(nullable=True, str_matches=_DIGITS4)
    DISKRESJONSKODE: Series[pl.String] = pa.Field(nullable=True, isin=["SPSF", "SPFO"])
    ER_EGEN_ANSATT: Series[pl.String] = pa.Field(isin=["J", "N"])
    FORMIDLINGSGRUPPEKODE: Series[pl.String] = pa.Field(
        nullable=True, isin=["ARBS", "IARBS", "ISERV"]
    )
    KVALIFISERINGSGRUPPEKODE: Series[pl.String] = pa.Field(
        nullable=True, isin=["IKVAL", "BFORM", "BATT", "VARIG"]
    )
    DOEDSDATO: Series[pl.Date] = pa.Field(nullable=True)
    REG_DATO: Series[pl.Datetime] = pa.Field()
    MOD_DATO: Series[pl.Datetime] = pa.Field()

    class Config(_Strict):
        pass


class ArenaIdentHist(pa.DataFrameModel):
    PERSON_ID: Series[pl.Int64] = pa.Field(ge=1)
    FODSELSNR: Series[pl.String] = pa.Field(str_matches=_DIGITS11)
    GYLDIG_FRA: Series[pl.Date] = pa.Field(nullable=True)
    GYLDIG_TIL: Series[pl.Date] = pa.Field(nullable=True)

    class Config(_Strict):
        pass


class ArenaVedtak(pa.DataFrameModel):
    VEDTAK_ID: Series[pl.Int64] = pa.Field(ge=1, unique=True)
    PERSON_ID: Series[pl.Int64] = pa.Field(ge=1)
    SAKSKODE: Series[pl.String] = pa.Field(isin=SAKSKODER)
    VEDTAKSTATUS: Series[pl.String] = pa.Field(isin=VEDTAKSTATUSER)
    FRA_DATO: Series[pl.Date] = pa.Field()
    TIL_DATO: Series[pl.Date] = pa.Field(nullable=True)
    DAGSATS: Series[pl.Float64] = pa.Field(nullable=True, ge=0)
    MOD_DATO: Series[pl.Datetime] = pa.Field()

    class Config(_Strict):
        pass

    @pa.dataframe_check(error="TIL_DATO before FRA_DATO")
    def period(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return _period_ok(data, "FRA_DATO", "TIL_DATO")


class ArenaTiltak(pa.DataFrameModel):
    DELTAKER_ID: Series[pl.Int64] = pa.Field(ge=1, unique=True)
    PERSON_ID: Series[pl.Int64] = pa.Field(ge=1)
    TILTAKSKODE: Series[pl.String] = pa.Field(str_length={"min_value": 1})
    DELTAKERSTATUS: Series[pl.String] = pa.Field(str_length={"min_value": 1})
    FRA_DATO: Series[pl.Date] = pa.Field(nullable=True)
    TIL_DATO: Series[pl.Date] = pa.Field(nullable=True)
    MOD_DATO: Series[pl.Datetime] = pa.Field()

    class Config(_Strict):
        pass


class InfotrygdPerson(pa.DataFrameModel):
    FNR: Series[pl.String] = pa.Field(str_matches=_DIGITS11)
    NAVN: Series[pl.String] = pa.Field(str_length={"min_value": 1})
    TKNR: Series[pl.String] = pa.Field(nullable=True, str_matches=_DIGITS4)
    POSTNR: Series[pl.String] = pa.Field(nullable=True, str_matches=_DIGITS4)
    SPESREG: Series[pl.String] = pa.Field(nullable=True, isin=["6", "7"])
    DODSDATO: Series[pl.Date] = pa.Field(nullable=True)

    class Config(_Strict):
        pass


class InfotrygdBenefit(pa.DataFrameModel):
    FNR: Series[pl.String] = pa.Field(str_matches=_DIGITS11)
    STONADSKODE: Series[pl.String] = pa.Field(isin=INFOTRYGD_STONADSKODER)
    FOM: Series[pl.Date] = pa.Field()
    TOM: Series[pl.Date] = pa.Field(nullable=True)
    GRAD: Series[pl.Int64] = pa.Field(ge=0, le=100)
    BELOP: Series[pl.Float64] = pa.Field(ge=0)
    KOMMUNENR: Series[pl.String] = pa.Field(nullable=True, str_matches=_DIGITS4)

    class Config(_Strict):
        pass

    @pa.dataframe_check(error="SH row without the owning KOMMUNENR")
    def sh_has_owner(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            (pl.col("STONADSKODE") != "SH") | pl.col("KOMMUNENR").is_not_null()
        )

    @pa.dataframe_check(error="TOM before FOM")
    def period(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return _period_ok(data, "FOM", "TOM")


class SosioRow(pa.DataFrameModel):
    klientnr: Series[pl.String] = pa.Field(str_length={"min_value": 1})
    fodselsnummer: Series[pl.String] = pa.Field(nullable=True)
    etternavn: Series[pl.String] = pa.Field(str_length={"min_value": 1})
    fornavn: Series[pl.String] = pa.Field(str_length={"min_value": 1})
    postnr: Series[pl.String] = pa.Field(nullable=True, str_matches=_DIGITS4)
    tjeneste: Series[pl.String] = pa.Field(isin=MUNICIPAL_SERVICES)
    vedtak_fra: Series[pl.Date] = pa.Field()
    vedtak_til: Series[pl.Date] = pa.Field(nullable=True)
    belop_mnd: Series[pl.Float64] = pa.Field(nullable=True, ge=0)

    class Config(_Strict):
        pass

    @pa.dataframe_check(error="vedtak_til before vedtak_fra")
    def period(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return _period_ok(data, "vedtak_fra", "vedtak_til")


class FlytClient(pa.DataFrameModel):
    klientId: Series[pl.String] = pa.Field(str_length={"min_value": 1})
    kommunenr: Series[pl.String] = pa.Field(str_matches=_DIGITS4)
    ident: Series[pl.String] = pa.Field(nullable=True)
    identType: Series[pl.String] = pa.Field(nullable=True, isin=["FNR", "DNR"])
    fornavn: Series[pl.String] = pa.Field(str_length={"min_value": 1})
    etternavn: Series[pl.String] = pa.Field(str_length={"min_value": 1})
    fodselsdato: Series[pl.Date] = pa.Field(nullable=True)
    postnr: Series[pl.String] = pa.Field(nullable=True, str_matches=_DIGITS4)
    sistEndret: Series[pl.Datetime] = pa.Field(nullable=True)

    class Config(_Strict):
        pass


class FlytService(pa.DataFrameModel):
    line: Series[pl.Int64] = pa.Field(ge=1)
    kode: Series[pl.String] = pa.Field(isin=MUNICIPAL_SERVICES)
    fra: Series[pl.Date] = pa.Field()
    til: Series[pl.Date] = pa.Field(nullable=True)
    belopMnd: Series[pl.Float64] = pa.Field(nullable=True, ge=0)

    class Config(_Strict):
        pass

    @pa.dataframe_check(error="til before fra")
    def period(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return _period_ok(data, "fra", "til")


# ---- the Folkeregister feed (shared/spec/folkeregister.md) ------------------------------------

GRADERINGER = ["UGRADERT", "FORTROLIG", "STRENGT_FORTROLIG", "STRENGT_FORTROLIG_UTLAND"]
IDENT_STATUSES = ["I_BRUK", "OPPHOERT"]
FAMILY_ROLES = ["MOR", "FAR", "MEDMOR", "BARN"]
SIVILSTAND_TYPES = [
    "UGIFT",
    "GIFT",
    "REGISTRERT_PARTNER",
    "SEPARERT",
    "SKILT",
    "ENKE_ELLER_ENKEMANN",
]
EVENT_KINDS = [
    "ADRESSEBESKYTTELSE_V1",
    "FOLKEREGISTERIDENTIFIKATOR_V1",
    "DOEDSFALL_V1",
    "FORELDERBARNRELASJON_V1",
    "SIVILSTAND_V1",
]
EVENT_CHANGES = ["OPPRETTET", "KORRIGERT", "ANNULLERT", "OPPHOERT"]


# the store's name columns (adapters.limits): a longer name is quarantined, not cut
_NAME = {name: limit.length for name, limit in limits.FEED_PERSON.items()}


class FeedPersonLine(pa.DataFrameModel):
    """One snapshot line's own text fields (each list item has its own schema below). Its dates
    are parsed, and their order checked, in Python: a million dates into a frame cost more
    than the checks they would get here."""

    fornavn: Series[pl.String] = pa.Field(
        str_length={"min_value": 1, "max_value": _NAME["fornavn"]}
    )
    mellomnavn: Series[pl.String] = pa.Field(
        nullable=True, str_length={"max_value": _NAME["mellomnavn"]}
    )
    etternavn: Series[pl.String] = pa.Field(
        str_length={"min_value": 1, "max_value": _NAME["etternavn"]}
    )
    adressebeskyttelse: Series[pl.String] = pa.Field(isin=GRADERINGER)

    class Config(_Strict):
        pass


class FeedIdentifier(pa.DataFrameModel):
    """One ``folkeregisteridentifikator`` item (its control digits are checked in Python)."""

    line: Series[pl.Int64] = pa.Field(ge=0)
    identifikasjonsnummer: Series[pl.String] = pa.Field(str_matches=_DIGITS11)
    type: Series[pl.String] = pa.Field(str_length={"min_value": 1})
    status: Series[pl.String] = pa.Field(isin=IDENT_STATUSES)

    class Config(_Strict):
        pass


class FeedFamily(pa.DataFrameModel):
    """One ``forelderBarnRelasjon`` item."""

    line: Series[pl.Int64] = pa.Field(ge=0)
    relatertPersonsIdent: Series[pl.String] = pa.Field(str_matches=_DIGITS11)
    relatertPersonsRolle: Series[pl.String] = pa.Field(isin=FAMILY_ROLES)

    class Config(_Strict):
        pass


class FeedSivilstand(pa.DataFrameModel):
    """One ``sivilstand`` item: the number only where the type has a spouse or partner."""

    line: Series[pl.Int64] = pa.Field(ge=0)
    type: Series[pl.String] = pa.Field(isin=SIVILSTAND_TYPES)
    relatertVedSivilstand: Series[pl.String] = pa.Field(nullable=True, str_matches=_DIGITS11)

    class Config(_Strict):
        pass


class FeedEventItem(pa.DataFrameModel):
    """One event of the day, its payload's codes flattened beside it."""

    hendelseId: Series[pl.String] = pa.Field(str_length={"min_value": 1, "max_value": 100})
    opprettet: Series[pl.Datetime] = pa.Field()
    opplysningstype: Series[pl.String] = pa.Field(isin=EVENT_KINDS)
    endringstype: Series[pl.String] = pa.Field(isin=EVENT_CHANGES)
    tidligereHendelseId: Series[pl.String] = pa.Field(
        nullable=True, str_length={"min_value": 1, "max_value": 100}
    )
    gradering: Series[pl.String] = pa.Field(nullable=True, isin=GRADERINGER)
    status: Series[pl.String] = pa.Field(nullable=True, isin=IDENT_STATUSES)
    relatertPersonsRolle: Series[pl.String] = pa.Field(nullable=True, isin=FAMILY_ROLES)
    sivilstandType: Series[pl.String] = pa.Field(nullable=True, isin=SIVILSTAND_TYPES)

    class Config(_Strict):
        pass
