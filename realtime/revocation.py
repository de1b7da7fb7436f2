"""Open websockets of a user signed out everywhere close at once.

A socket checks its user when it opens (ClinicAuthMiddleware: the token's version, the
session's hash). A revocation (`accounts.services.users_sign_out_everywhere`: a new password,
a deactivation, a change of roles, "sign out everywhere") refuses the user's next request, but
a socket makes none: without this it would go on hearing the clinic's events. So every consumer
that serves a signed-in user joins the user's group, `<schema>.user.<id>` (`user_group`), when
it opens, and closes with 4401 (`CLOSE_SIGNED_OUT`, the code of a socket not signed in: the
client signs in again) when accounts' `tokens_revoked` arrives there, sent once the revocation
is committed.

Joining comes before a last look at the user's version (`SignedInConsumer.user_group_join`): a
revocation committed after the socket's user was read is either seen by that look or heard in
the group, never missed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth import get_user_model

from clinic import metrics

from .groups import group_name, group_send
from .tenancy import clinic_database_sync_to_async

CLOSE_SIGNED_OUT = 4401
SIGNED_OUT = "user.signed_out"  # the message's type: handled by `user_signed_out`


def user_group(user_id: int, *, schema: str) -> str:
    """The group of one user's sockets in one clinic (user ids are per clinic schema)."""
    return group_name("user", user_id, schema=schema)


def tokens_revoked_received(sender: Any, *, user_ids: Iterable[int], schema_name: str, **kwargs):
    """accounts' `tokens_revoked`: tell each user's open sockets (connected in `ready`)."""
    groups = [user_group(pk, schema=schema_name) for pk in user_ids]
    if groups:
        group_send(groups, {"type": SIGNED_OUT})


@clinic_database_sync_to_async
def _still_signed_in(clinic, user_id: int, token_version: int) -> bool:
    return (
        get_user_model()
        .objects.filter(pk=user_id, is_active=True, token_version=token_version)
        .exists()
    )


class SignedInConsumer(AsyncJsonWebsocketConsumer):
    """The base of consumers that serve a signed-in user (`scope["user"]`): call
    `await self.user_group_join()` once the user is known to be signed in (False: revoked
    meanwhile, close at once) and `await self.user_group_leave()` in `disconnect`. The socket
    then closes with `CLOSE_SIGNED_OUT` when its user is signed out everywhere."""

    user_group_name: str | None = None
    _counted = False  # open, in the websocket gauge (clinic.metrics)

    async def accept(self, subprotocol=None, headers=None):
        await super().accept(subprotocol, headers)
        self._counted = True
        metrics.websocket_opened(type(self).__name__)

    async def websocket_disconnect(self, message):
        if self._counted:
            self._counted = False
            metrics.websocket_closed(type(self).__name__)
        await super().websocket_disconnect(message)

    async def user_group_join(self) -> bool:
        user, clinic = self.scope["user"], self.scope["clinic"]
        self.user_group_name = user_group(user.pk, schema=clinic.schema_name)
        await self.channel_layer.group_add(self.user_group_name, self.channel_name)
        return await _still_signed_in(clinic, user.pk, user.token_version)

    async def user_group_leave(self) -> None:
        if self.user_group_name is not None:
            await self.channel_layer.group_discard(self.user_group_name, self.channel_name)

    async def user_signed_out(self, message: dict) -> None:
        await self.close(code=CLOSE_SIGNED_OUT)


CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


class FeedConsumer(SignedInConsumer):
    """A signed-in user's feed of committed events in the groups `feed_groups` names: refuses
    with 4401 (not signed in) or 4403 (`feed_groups` gives None: not this user's feed), says
    `{"type": "ready", ...}` once joined (a client that reconnects reads its page again then,
    so nothing that happened while it was away is missed) and forwards every event; closes with
    4401 when the user is signed out everywhere."""

    groups_joined: tuple[str, ...] = ()

    async def feed_groups(self, clinic, user) -> tuple[list[str] | None, dict[str, Any]]:
        """The groups `user` listens to in `clinic` (None: refused) and what the `ready` frame
        says besides its type."""
        raise NotImplementedError

    async def connect(self):
        user = self.scope.get("user")
        subprotocol = self.scope.get("accepted_subprotocol")
        if user is None or not user.is_authenticated:
            await self.accept(subprotocol=subprotocol)
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        groups, ready = await self.feed_groups(self.scope["clinic"], user)
        await self.accept(subprotocol=subprotocol)
        if groups is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        if not await self.user_group_join():
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.groups_joined = tuple(groups)
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.send_json({"type": "ready", **ready})

    async def disconnect(self, code):
        await self.user_group_leave()
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def event_forward(self, message):
        await self.send_json(message["event"])
