"""Small presentation helpers of the patient pages."""

import gettext
import hashlib
from functools import cache

import pycountry
from django import template
from django.utils.translation import get_language

register = template.Library()


@register.filter
def initials(name: str) -> str:
    """'Dr. Maya Lopez' -> 'ML' (titles such as Dr. are skipped)."""
    words = [w for w in str(name).replace(",", " ").split() if not w.endswith(".")]
    letters = [w[0] for w in words if w[0].isalpha()]
    return ("".join(letters[:1] + letters[-1:]) if len(letters) > 1 else "".join(letters)).upper()


@register.filter
def hue(value) -> int:
    """A stable colour angle (0-359) for an avatar placeholder."""
    return int(hashlib.sha1(str(value).encode()).hexdigest()[:6], 16) % 360  # noqa: S324


@cache
def _iso639(language: str):
    try:
        return gettext.translation("iso639-3", pycountry.LOCALES_DIR, languages=[language]).gettext
    except OSError:
        return lambda text: text


@register.filter
def language_name(code: str) -> str:
    """'es' -> 'Spanish' (in the page's language when pycountry has the translation)."""
    found = pycountry.languages.get(alpha_2=str(code))
    if found is None:
        return str(code)
    name = getattr(found, "common_name", None) or found.name
    language = (get_language() or "en").split("-")[0]
    return name if language == "en" else _iso639(language)(found.name)


@register.filter
def stars(rating) -> str:
    """A rating out of 5 as five star characters (for show; the number is written beside)."""
    try:
        full = round(float(rating))
    except (TypeError, ValueError):
        full = 0
    return "★" * full + "☆" * (5 - full)
