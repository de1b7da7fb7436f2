"""Where a webhook may be sent: never to this network's own machines (SSRF).

A URL's host is resolved and every address it resolves to must be a public one (not loopback,
private, link-local such as the cloud metadata address, multicast, reserved or unspecified),
when the subscription is saved and again at every send, against the addresses the send then
connects to (a name that resolved to a public address yesterday and to 127.0.0.1 today — DNS
rebinding — is refused at the send). `WEBHOOK_ALLOW_PRIVATE_URLS` turns the check off (tests,
a development machine's receiver on localhost); production settings leave it off.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings


class AddressRefused(Exception):
    """The URL may not be called; the message says why (shown to the clinic admin)."""


@dataclass(frozen=True)
class Target:
    """A URL to call and the address to connect to (None: let the client resolve it)."""

    url: str
    host: str
    port: int
    address: str | None


def _refused(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified


def target_resolve(url: str, *, allow_private: bool | None = None) -> Target:
    """Check `url` and resolve its host. Raises AddressRefused when the scheme is not http(s),
    the host does not resolve, or any address it resolves to is not public (unless private
    addresses are allowed)."""
    if allow_private is None:
        allow_private = settings.WEBHOOK_ALLOW_PRIVATE_URLS
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AddressRefused("The URL must be http:// or https:// with a host.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise AddressRefused("The URL's port is not a number from 0 to 65535.") from error
    host = parts.hostname
    if allow_private:
        return Target(url=url, host=host, port=port, address=None)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise AddressRefused(f"The host {host!r} does not resolve.") from error
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise AddressRefused(f"The host {host!r} does not resolve.")
    if bad := [a for a in addresses if _refused(a)]:
        raise AddressRefused(
            f"The host {host!r} resolves to an address that is not public ({bad[0]}): "
            "webhooks are sent to public addresses only."
        )
    return Target(url=url, host=host, port=port, address=addresses[0])
