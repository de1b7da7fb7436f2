import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")

application = get_wsgi_application()


def settle() -> None:
    """Import every view now rather than on the first request, then hide everything start-up
    allocated from the garbage collector (`gc.freeze`): those objects live as long as the
    process, and a full collection walking them all again pauses whichever request triggered
    it. Called by the WSGI and the ASGI servers."""
    from django.conf import settings
    from django.urls import get_resolver

    for urlconf in {settings.ROOT_URLCONF, getattr(settings, "PUBLIC_SCHEMA_URLCONF", None)}:
        if urlconf:
            get_resolver(urlconf).url_patterns  # noqa: B018 (imports the views)
    gc.collect()
    gc.freeze()


settle()
