from django.utils.translation import pgettext_lazy

# Date and time formats of the patient pages (Django `date` syntax), translatable per language.
FORMATS = {
    "time": pgettext_lazy("time format", "g:i A"),
    "day": pgettext_lazy("short day format", "D j M"),
    "weekday": pgettext_lazy("weekday format", "D"),
    "daynum": pgettext_lazy("day of month format", "j M"),
    "date": pgettext_lazy("long date format", "l j F Y"),
    "datetime": pgettext_lazy("date and time format", "D j M Y, g:i A"),
}


def portal(request) -> dict:
    """The clinic, the viewer's zone and the page formats, for every template."""
    zone = getattr(request, "viewer_zone", None)
    return {
        "clinic": getattr(request, "tenant", None),
        "viewer_zone": zone.key if zone else "",
        "viewer_zone_source": getattr(request, "viewer_zone_source", ""),
        "fmt": FORMATS,
    }
