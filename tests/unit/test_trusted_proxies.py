"""Who the client is behind trusted proxies: `TrustedProxies.client_of` reads X-Forwarded-For from the right, takes
`ip:port` and `[v6]:port` as the address they name, and makes the client unknown — never the trusted peer — when a
hop it has to read is not an address."""

from __future__ import annotations

import pytest

from shop.web.client import UNKNOWN, TrustedProxies

TRUSTED = TrustedProxies(["127.0.0.0/8", "10.0.0.0/8", "fd00::/8"])


@pytest.mark.parametrize(("forwarded", "client"), [
    ("203.0.113.9", "203.0.113.9"),
    ("203.0.113.9:4711", "203.0.113.9"),
    ("203.0.113.9:4711, 10.0.0.5:80", "203.0.113.9"),
    ("2001:db8::1", "2001:db8::1"),
    ("[2001:db8::1]:80", "2001:db8::1"),
    ("[2001:db8::1]", "2001:db8::1"),
    ("[2001:DB8:0:0::1]:443", "2001:db8::1"),  # one client, one spelling: a throttle cannot be dodged by case
    ("::ffff:203.0.113.9", "203.0.113.9"),  # an IPv4 client seen through a dual-stack socket
    ("  203.0.113.9\t", "203.0.113.9"),
    ("garbage, unknown, , 203.0.113.9", "203.0.113.9"),  # what the client wrote left of itself is never read
    ("203.0.113.9, fd00::7, 10.0.0.5", "203.0.113.9"),  # our proxies are skipped, whatever their family
])
def test_the_client_is_the_right_most_address_that_is_not_a_trusted_proxy(forwarded: str, client: str) -> None:
    assert TRUSTED.client_of(forwarded) == client


@pytest.mark.parametrize("forwarded", [
    "203.0.113.9, garbage",
    "203.0.113.9, , 10.0.0.1",  # an empty hop behind our own proxy
    "",
    " ",
    "unknown",
    "203.0.113.9, unknown",
    "_hidden",  # RFC 7239's obfuscated identifier
    "fe80::1%eth0",  # a zone names an interface of the proxy's host, not a client
    "[fe80::1%eth0]:80",
    "203.0.113.9:99999",
    "203.0.113.9:port",
    "[203.0.113.9]:80",  # brackets are for IPv6
    "[2001:db8::1]x",
    "localhost",
    "010.0.0.1",  # leading zeros: octal to some parsers, decimal to others
    "203.0.113.9 10.0.0.5",
    "10.0.0.5, 127.0.0.1:80x",
])
def test_a_hop_that_is_not_an_address_makes_the_client_unknown_never_the_peer(forwarded: str) -> None:
    client = TRUSTED.client_of(forwarded)
    assert client == UNKNOWN and client not in TRUSTED


def test_only_trusted_proxies_all_the_way_means_the_left_most_of_them() -> None:
    assert TRUSTED.client_of("10.0.0.7, 10.0.0.5") == "10.0.0.7"
    assert TRUSTED.client_of("127.0.0.1") == "127.0.0.1"
    assert TRUSTED.client_of("garbage, 10.0.0.7") == UNKNOWN  # all trusted, then garbage: unknown


def test_a_dual_stack_peer_is_trusted_as_its_ipv4_address() -> None:
    assert "::ffff:10.1.2.3" in TRUSTED and "::ffff:203.0.113.9" not in TRUSTED
    assert "unknown" not in TRUSTED and "" not in TRUSTED
