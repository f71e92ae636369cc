"""Which addresses a remote media download may connect to (SSRF protection, sans-IO).

A URL handed to ``send_image(user, url)`` often comes from an agent, i.e. from text a
stranger may influence. By default the download may only reach public unicast
addresses: no loopback, link-local (incl. the cloud metadata address
``169.254.169.254``), private, shared (CGNAT ``100.64.0.0/10``), multicast,
unspecified, reserved or documentation ranges, in IPv4 and IPv6, and an IPv4-mapped
(``::ffff:a.b.c.d``), IPv4-compatible, NAT64 (``64:ff9b::/96``), 6to4 or Teredo IPv6
address is judged by the IPv4 address it carries. The check runs on the addresses DNS
returned, and the connection then goes to the checked address itself.

`RemoteMediaPolicy` is the user-facing value: its ``allow_hosts`` and
``allow_networks`` open exceptions (tests allow the loopback server with them).
"""

from __future__ import annotations

import ipaddress
from typing import Final, TypeAlias

import attrs

__all__ = [
    "DEFAULT_MAX_REMOTE_BYTES",
    "IPAddress",
    "IPNetwork",
    "RemoteMediaPolicy",
    "address_class",
    "embedded_ipv4",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_MAX_REMOTE_BYTES: Final = 20 * 1024 * 1024

_CGNAT: Final = ipaddress.IPv4Network("100.64.0.0/10")
_BENCHMARK: Final = ipaddress.IPv4Network("198.18.0.0/15")
_THIS_NETWORK: Final = ipaddress.IPv4Network("0.0.0.0/8")
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL: Final = ipaddress.IPv6Network("64:ff9b:1::/48")
_DOC6: Final = ipaddress.IPv6Network("2001:db8::/32")
_IPV4_COMPAT: Final = ipaddress.IPv6Network("::/96")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _IPV4_COMPAT and int(ip) > 1:  # not :: or ::1 (judged as IPv6)
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def _ipv4_class(ip: ipaddress.IPv4Address) -> str | None:
    if ip.is_unspecified or ip in _THIS_NETWORK:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip in _CGNAT:
        return "shared (CGNAT)"
    if ip.is_multicast:
        return "multicast"
    if ip.is_reserved or ip == ipaddress.IPv4Address("255.255.255.255"):
        return "reserved"
    if ip in _BENCHMARK:
        return "reserved"
    if ip.is_private or not ip.is_global:
        return "private"
    return None


def address_class(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public unicast address (``"loopback"``, ...), or ``None``.

    IPv6 addresses that carry an IPv4 address are judged by both.
    """
    if isinstance(ip, ipaddress.IPv4Address):
        return _ipv4_class(ip)
    inner = embedded_ipv4(ip)
    if inner is not None:
        reason = _ipv4_class(inner)
        if reason is not None:
            return reason
        if ip.ipv4_mapped is not None or ip in _NAT64:
            return None  # a public IPv4 address, reached through IPv6
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_site_local or ip in _NAT64_LOCAL:
        return "private"
    if ip in _DOC6:
        return "reserved"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private or not ip.is_global:
        return "private"
    return None


def _networks(value: object) -> tuple[IPNetwork, ...]:
    if isinstance(value, str | ipaddress.IPv4Network | ipaddress.IPv6Network):
        value = (value,)
    assert isinstance(value, tuple | list | frozenset | set)
    return tuple(ipaddress.ip_network(v, strict=False) for v in value)


def _hosts(value: object) -> frozenset[str]:
    if isinstance(value, str):
        value = (value,)
    assert isinstance(value, tuple | list | frozenset | set)
    return frozenset(str(h).lower().rstrip(".") for h in value)


@attrs.frozen
class RemoteMediaPolicy:
    """How media sends fetch ``http(s)`` URLs.

    Attributes:
        max_bytes: Largest body accepted (default 20 MiB); a longer one is cut off
            at the cap, whether it announced its length or not.
        max_redirects: Redirects followed (each hop is checked again), default 5.
        timeout: Seconds for the whole download, redirects included.
        allow_hosts: Host names (lower case) that may resolve to any address,
            e.g. an internal image server. The URL's host must match exactly.
        allow_networks: Address ranges allowed although not public, e.g.
            ``["10.1.2.0/24"]`` or ``["127.0.0.1/32"]`` for a test server.
        allow_http: Accept plain ``http://`` URLs (default ``True``).
    """

    max_bytes: int = DEFAULT_MAX_REMOTE_BYTES
    max_redirects: int = 5
    timeout: float = 60.0
    allow_hosts: frozenset[str] = attrs.field(default=frozenset(), converter=_hosts)
    allow_networks: tuple[IPNetwork, ...] = attrs.field(default=(), converter=_networks)
    allow_http: bool = True

    def refusal(self, host: str, ip: IPAddress) -> str | None:
        """Why a connection to ``ip`` (resolved from ``host``) is refused, or ``None``."""
        if host.lower().rstrip(".") in self.allow_hosts:
            return None
        reason = address_class(ip)
        if reason is None:
            return None
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and (inner := embedded_ipv4(ip)) is not None:
            candidates.append(inner)
        for net in self.allow_networks:
            if any(c.version == net.version and c in net for c in candidates):
                return None
        return f"{reason} address"
