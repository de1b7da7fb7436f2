from django.utils.functional import SimpleLazyObject

from practice.models import ClinicSettings
from practice.selectors import location_list


def portal(request) -> dict:
    """The clinic, its contact and policies (read once, by the pages that show them), the
    viewer's zone, for every template. Dates and times are written by the clinic_formats
    filters (practice/formats.py), in the clinic's locale."""
    zone = getattr(request, "viewer_zone", None)
    return {
        "clinic": getattr(request, "tenant", None),
        "clinic_settings": SimpleLazyObject(ClinicSettings.load),
        # the numbers "call the clinic" gives when neither a location nor the clinic has one
        "clinic_phones": SimpleLazyObject(
            lambda: list(location_list().exclude(phone="").only("name", "phone"))
        ),
        "viewer_zone": zone.key if zone else "",
        "viewer_zone_source": getattr(request, "viewer_zone_source", ""),
    }
