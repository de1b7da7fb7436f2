from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth.models import Group

from .groups import group_name
from .tenancy import clinic_database_sync_to_async


@clinic_database_sync_to_async
def _clinic_roles(clinic) -> list[str]:
    return sorted(Group.objects.values_list("name", flat=True))


class PingConsumer(AsyncJsonWebsocketConsumer):
    """`/ws/ping/`: answers with the clinic of the host it was opened on, proving the socket,
    its database reads and its group all land in that clinic."""

    async def connect(self):
        clinic = self.scope["clinic"]
        self.group = group_name("ping", schema=clinic.schema_name)
        await self.channel_layer.group_add(self.group, self.channel_name)
        # A client that offered `bearer, <token>` needs the subprotocol echoed.
        await self.accept(subprotocol=self.scope.get("accepted_subprotocol"))
        await self.send_json(
            {
                "type": "pong",
                "clinic": clinic.name,
                "slug": clinic.slug,
                "schema": clinic.schema_name,
                "roles": await _clinic_roles(clinic),
                "group": self.group,
            }
        )

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        await self.send_json({"type": "pong", "echo": content})

    async def event_forward(self, message):
        await self.send_json(message["event"])
