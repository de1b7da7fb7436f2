"""ASGI entry point: websockets (Channels). Ordinary HTTP is served by the WSGI server; this
app also answers HTTP so a single ASGI process works in development."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")
django_asgi_app = get_asgi_application()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from realtime.routing import websocket_urlpatterns as realtime_routes  # noqa: E402
from realtime.tenancy import (  # noqa: E402
    ClinicAuthMiddleware,
    ClinicOriginValidator,
    ClinicWebsocketMiddleware,
)
from scheduling.routing import websocket_urlpatterns as scheduling_routes  # noqa: E402
from waitlist.routing import websocket_urlpatterns as waitlist_routes  # noqa: E402

from .wsgi import settle  # noqa: E402

NO_ROUTE_CLOSE_CODE = 4404


class NoRouteConsumer(AsyncWebsocketConsumer):
    """Any socket path no route matches: accepted, then closed with 4404 (Channels' router
    raises ValueError for it, which the server answers as an HTTP 500 to the handshake)."""

    async def connect(self):
        await self.accept()
        await self.close(code=NO_ROUTE_CLOSE_CODE)


no_route = [re_path(r"", NoRouteConsumer.as_asgi())]
routes = realtime_routes + scheduling_routes + waitlist_routes + no_route

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Origin rules by credential: cookie sockets only from the clinic's own pages, token
        # sockets (integrators' servers send no Origin) unchecked (realtime.tenancy).
        "websocket": ClinicOriginValidator(
            ClinicWebsocketMiddleware(
                ClinicAuthMiddleware(
                    URLRouter(realtime_routes + scheduling_routes + waitlist_routes + no_route)
                )
            )
        ),
    }
)
settle()
