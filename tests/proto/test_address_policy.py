"""The remote media address classifier and policy (sans-IO), with Hypothesis."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, strategies as st

import weixin_trio as wx
from weixin_trio._proto.address_policy import address_class, embedded_ipv4

NOT_PUBLIC_V4 = [
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
]
NOT_PUBLIC_V6 = [
    ipaddress.IPv6Network(n)
    for n in ("::1/128", "::/128", "fe80::/10", "fc00::/7", "ff00::/8", "2001:db8::/32")
]

ipv4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
ipv6 = st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)


def _in(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, nets: list) -> bool:  # type: ignore[type-arg]
    return any(ip in n for n in nets)


@given(ipv4)
def test_every_non_public_ipv4_range_is_refused(ip: ipaddress.IPv4Address) -> None:
    if _in(ip, NOT_PUBLIC_V4):
        assert address_class(ip) is not None
    if address_class(ip) is None:
        assert ip.is_global
        assert not ip.is_multicast


@given(ipv4)
def test_ipv4_inside_ipv6_is_judged_as_ipv4(ip: ipaddress.IPv4Address) -> None:
    mapped = ipaddress.IPv6Address(f"::ffff:{ip}")
    nat64 = ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(ip))
    sixtofour = ipaddress.IPv6Address((0x2002 << 112) | (int(ip) << 80) | 1)
    expected = address_class(ip)
    assert address_class(mapped) == expected
    assert address_class(nat64) == expected
    if expected is not None:
        assert address_class(sixtofour) == expected
    assert embedded_ipv4(mapped) == ip


@given(ipv6)
def test_every_non_public_ipv6_range_is_refused(ip: ipaddress.IPv6Address) -> None:
    if _in(ip, NOT_PUBLIC_V6):
        assert address_class(ip) is not None
    if address_class(ip) is None:
        assert ip.is_global or embedded_ipv4(ip) is not None
        assert not ip.is_multicast
        assert not ip.is_loopback
        assert not ip.is_link_local


@given(st.one_of(ipv4, ipv6))
def test_an_allowed_network_opens_exactly_itself(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    net = ipaddress.ip_network(f"{ip}/{ip.max_prefixlen}")
    assert wx.RemoteMediaPolicy(allow_networks=[net]).refusal("h.test", ip) is None
    assert wx.RemoteMediaPolicy().refusal("h.test", ip) == (
        None if address_class(ip) is None else f"{address_class(ip)} address"
    )


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "shared (CGNAT)"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("255.255.255.255", "reserved"),
        ("fd12::1", "private"),
        ("fe80::1", "link-local"),
        ("ff02::1", "multicast"),
        ("64:ff9b::a00:1", "private"),
        ("8.8.8.8", None),
        ("2606:4700::1111", None),
        ("::ffff:8.8.8.8", None),
    ],
)
def test_known_addresses(address: str, reason: str | None) -> None:
    assert address_class(ipaddress.ip_address(address)) == reason


def test_policy_values() -> None:
    policy = wx.RemoteMediaPolicy(allow_hosts=["Images.Internal."], allow_networks="10.1.0.0/16")
    assert policy.allow_hosts == frozenset({"images.internal"})
    assert policy.refusal("images.internal", ipaddress.ip_address("10.9.9.9")) is None
    assert policy.refusal("other.test", ipaddress.ip_address("10.1.2.3")) is None
    assert policy.refusal("other.test", ipaddress.ip_address("::ffff:10.1.2.3")) is None
    assert policy.refusal("other.test", ipaddress.ip_address("10.2.0.1")) == "private address"
    assert wx.RemoteMediaPolicy().max_bytes == 20 * 1024 * 1024
