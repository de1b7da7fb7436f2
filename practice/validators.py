import zoneinfo
from functools import cache

import pycountry
from django.core.exceptions import ValidationError
from stdnum import luhn


def validate_npi(value: str) -> None:
    """A US National Provider Identifier: 10 digits whose last is the Luhn check digit computed
    over the number prefixed with 80840 (the health-industry issuer prefix)."""
    if not (len(value) == 10 and value.isdigit()) or not luhn.is_valid("80840" + value):
        raise ValidationError(
            f"'{value}' is not a valid NPI (10 digits with a valid check digit).", code="npi"
        )


@cache
def _language_codes() -> frozenset[str]:
    return frozenset(lang.alpha_2 for lang in pycountry.languages if hasattr(lang, "alpha_2"))


def validate_language(value: str) -> None:
    if value not in _language_codes():
        raise ValidationError(f"'{value}' is not an ISO 639-1 language code.", code="language")


def validate_languages(values: list[str]) -> None:
    for value in values:
        validate_language(value)


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_timezone(value: str) -> None:
    if value not in _zones():
        raise ValidationError(f"'{value}' is not an IANA time zone.", code="timezone")


@cache
def _country_codes() -> frozenset[str]:
    return frozenset(country.alpha_2 for country in pycountry.countries)


def validate_country(value: str) -> None:
    if value not in _country_codes():
        raise ValidationError(f"'{value}' is not an ISO 3166-1 country code.", code="country")


@cache
def _currency_codes() -> frozenset[str]:
    return frozenset(currency.alpha_3 for currency in pycountry.currencies)


def validate_currency(value: str) -> None:
    if value not in _currency_codes():
        raise ValidationError(f"'{value}' is not an ISO 4217 currency code.", code="currency")


def npi_complete(first_nine: str) -> str:
    """The NPI whose first nine digits are `first_nine` (its check digit appended)."""
    if not (len(first_nine) == 9 and first_nine.isdigit()):
        raise ValueError("An NPI starts with nine digits.")
    return first_nine + luhn.calc_check_digit("80840" + first_nine)
