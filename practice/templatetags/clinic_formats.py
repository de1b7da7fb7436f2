"""Template filters over practice.formats: every page writes dates, times and money through
them, in the clinic's locale (the request's style) and Django's current zone unless a zone is
given (`{{ visit.start|clock:zone }}`, where `zone` is `visit|visit_zone`)."""

from datetime import date, datetime

from django import template

from practice import formats

register = template.Library()


def _blank(value) -> bool:
    return value is None or value == ""


# One filter per date style of formats.date_format, all of the same shape:
# `{{ value|<name> }}` or `{{ value|<name>:zone }}`.
DATE_FILTERS = {
    "longdate": "long",  # 'Tuesday, December 8, 2026' / 'Tuesday 8 December 2026'
    "shortdate": "medium",  # 'Dec 8, 2026' / '8 Dec 2026'
    "numdate": "short",  # '3/4/90' / '04/03/1990' (dates of birth)
    "day": "day",  # 'Tue, Dec 8' / 'Tue 8 Dec'
    "daynum": "daynum",  # 'Dec 8' / '8 Dec'
    "weekday": "weekday",  # 'Tue'
    "month": "month",  # 'Dec'
    "dom": "dom",  # '8'
}


def _date_filter(name: str, style: str):
    def write(value: date | datetime, zone=None) -> str:
        return "" if _blank(value) else formats.date_format(value, style=style, zone=zone)

    write.__name__ = name
    write.__doc__ = f"The {style!r} date style of practice.formats.date_format."
    return write


for _name, _style in DATE_FILTERS.items():
    globals()[_name] = register.filter(_name, _date_filter(_name, _style))


@register.filter
def clock(value: datetime, zone=None) -> str:
    """'10:45 AM' / '10:45'."""
    return "" if _blank(value) else formats.time_format(value, zone=zone)


@register.filter
def when(value: datetime, zone=None) -> str:
    """'Dec 8, 2026, 10:45 AM' / '8 Dec 2026, 10:45'."""
    return "" if _blank(value) else formats.datetime_format(value, zone=zone)


@register.filter
def zone_label(value: datetime, zone=None) -> str:
    """'Dublin time (GMT)'."""
    return "" if _blank(value) else formats.zone_label(value, zone)


@register.filter
def visit_zone(visit, viewer=None):
    """The zone a visit is written in: its location's in person, the viewer's by video."""
    return formats.visit_zone(visit, viewer)


@register.filter
def place_zone(location, mode: str = ""):
    """The zone of a slot held at `location` (its own, in person) or by video (the viewer's)."""
    return formats.place_zone(location, telehealth=mode == "telehealth")


@register.filter
def money(amount, currency: str | None = None) -> str:
    """'$1,234.50' / '€1,234.50', in the clinic's currency unless one is given."""
    if _blank(amount):
        return ""
    style = formats.style_active()
    return formats.money_format(amount, currency=currency or style.currency, locale=style.locale)
