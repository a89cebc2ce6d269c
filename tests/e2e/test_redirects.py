"""No redirect puts the request's Host header in its Location: the Host header is the client's to write."""

from __future__ import annotations

import httpx


async def test_a_slash_redirect_stays_on_this_site_whatever_host_was_claimed(client: httpx.AsyncClient) -> None:
    answer = await client.get("/admin", headers={"Host": "evil.example"})
    assert answer.status_code in (301, 302, 307, 308)
    assert answer.headers["location"] == "/admin/"
    answer = await client.get("https://shop.test/admin?next=1", headers={"Host": "evil.example"})
    assert answer.headers["location"] == "/admin/?next=1"


async def test_a_redirect_elsewhere_on_purpose_is_left_alone() -> None:
    from shop.web.security_headers import _same_site_location

    assert _same_site_location(b"https://hooks.stripe.com/3ds/x", b"shop.example") == b"https://hooks.stripe.com/3ds/x"
    assert _same_site_location(b"//shop.example//evil.example/x", b"shop.example") == b"/evil.example/x"
    assert _same_site_location(b"/cart", b"shop.example") == b"/cart"
