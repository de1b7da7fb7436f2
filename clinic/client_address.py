"""The client's address: the one answer every rate limit and sign-in lockout counts by.

`X-Forwarded-For` is written by whoever sends the request, so it is believed only when the
connection comes from a proxy of ours (`TRUSTED_PROXIES`, empty by default): then the client is
the right-most address of the header that is not one of our proxies (each proxy appends the
peer it saw; anything left of that was written by the client). Otherwise the client is the
connection's peer, `REMOTE_ADDR`, whatever the headers say. DRF's `NUM_PROXIES` counts hops
without asking who the peer is, and django-ipware's trusted proxies are looked up in the header
itself: both can be fooled by a client that writes the header, so neither is used.
"""

import functools
import ipaddress

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.cache
def _trusted_networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(proxy.strip(), strict=False) for proxy in proxies)


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def client_address(request: HttpRequest) -> str | None:
    """The address of the client that sent `request` (a Django or DRF request), normalised
    (one spelling per address), or None when the connection has none."""
    networks = _trusted_networks(tuple(settings.TRUSTED_PROXIES))
    peer = _address(request.META.get("REMOTE_ADDR", ""))
    if peer is None:
        return None

    def trusted(address) -> bool:
        return any(address in network for network in networks)

    if not trusted(peer):
        return str(peer)
    client = peer
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    for hop in reversed(forwarded.split(",") if forwarded else []):
        address = _address(hop)
        if address is None:  # a broken header: the last proxy that handed it on is all we know
            break
        client = address
        if not trusted(address):
            break
    return str(client)
