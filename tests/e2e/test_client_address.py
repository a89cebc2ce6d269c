"""The client is who the trusted proxies vouch for, everywhere: a spoofed or malformed X-Forwarded-For opens
neither /metrics nor a way around the login throttle, the request log records the same client, X-Forwarded-Proto
counts only from a trusted proxy — and under `shop serve`, uvicorn no longer takes a client's word for its address
whatever FORWARDED_ALLOW_IPS says."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest_asyncio

from shop.config import Settings
from tests.conftest import make_settings, migrate_all
from tests.e2e.shopping import PROBLEM
from tests.e2e.test_request_log import OUTSIDER, found_within, logged_settings, serving
from tests.e2e.test_serve import start_serve, stop_serve

MALFORMED = ["203.0.113.9, garbage", "203.0.113.9, , 10.0.0.1", "unknown", "203.0.113.9, unknown", "",
             "fe80::1%eth0", "[fe80::1%eth0]:80", "203.0.113.9:99999", "localhost"]
ATTEMPTS = 35  # the client limit is 30 failed logins a minute


async def test_a_malformed_forwarded_for_from_a_trusted_proxy_does_not_open_metrics(
        demo_settings: Settings, tmp_path: Path) -> None:
    settings = logged_settings(demo_settings, tmp_path)
    async with serving(settings) as proxy:  # the test client's peer is loopback: a trusted proxy
        assert (await proxy.get("/metrics")).status_code == 200  # the proxy itself may scrape
        refused = {hop: await proxy.get("/metrics", headers={"X-Forwarded-For": hop}) for hop in MALFORMED}
        # an address with a port is the address: still an outsider
        ported = await proxy.get("/metrics", headers={"X-Forwarded-For": "198.51.100.7:4711"})
        bracketed = await proxy.get("/metrics", headers={"X-Forwarded-For": "[2001:db8::1]:80"})
        # our own proxies all the way: the left-most of them is the client, and it is trusted
        internal = await proxy.get("/metrics", headers={"X-Forwarded-For": "127.0.0.2:80, 127.0.0.1"})
    for hop, answer in {**refused, "ported": ported, "bracketed": bracketed}.items():
        assert answer.status_code == 403, hop
        assert answer.headers["content-type"] == PROBLEM and "shop_http_requests_total" not in answer.text
    assert internal.status_code == 200
    # the request log records the client the throttles and /metrics went by
    ids = [refused["203.0.113.9, garbage"].headers["x-request-id"], ported.headers["x-request-id"],
           bracketed.headers["x-request-id"]]
    rows, lines = await found_within(settings, ids, 2.0)
    assert [rows[i].client_ip for i in ids] == ["unknown", "198.51.100.7", "2001:db8::1"]
    assert lines[ids[0]]["client_ip"] == "unknown"


async def _failed_logins(client: httpx.AsyncClient, forwarded: list[str]) -> list[int]:
    statuses = []
    for hop in forwarded:  # a new account every time: only the per-client limit can stop this
        answer = await client.post("/api/v1/auth/login", headers={"X-Forwarded-For": hop},
                                   json={"email": f"nobody-{uuid.uuid4().hex[:12]}@example.com",
                                         "password": "not-the-password-1"})
        statuses.append(answer.status_code)
    return statuses


async def test_rotating_spoofed_addresses_do_not_escape_the_login_throttle(demo_settings: Settings) -> None:
    settings = demo_settings.model_copy(update={"response_cache": False})
    rotating = [f"198.51.100.{n}" for n in range(ATTEMPTS)]
    async with serving(settings, peer=OUTSIDER) as outsider:  # not a proxy of ours: its header is its own claim
        spoofed = await _failed_logins(outsider, rotating)
    async with serving(settings) as proxy:  # our proxy, forwarding whatever the client made of the header
        malformed = await _failed_logins(proxy, [f"{hop}, garbage-{n}" for n, hop in enumerate(rotating)])
    for statuses in (spoofed, malformed):
        assert statuses[:30] == [401] * 30 and set(statuses[30:]) == {429}, statuses


async def test_forwarded_proto_counts_only_from_a_trusted_proxy(demo_settings: Settings) -> None:
    https = {"X-Forwarded-Proto": "https"}
    async with serving(demo_settings) as proxy:
        secure = await proxy.get("/healthz", headers=https)
        plain = await proxy.get("/healthz")
    async with serving(demo_settings, peer=OUTSIDER) as outsider:
        claimed = await outsider.get("/healthz", headers=https)
    assert "strict-transport-security" in secure.headers
    assert "strict-transport-security" not in plain.headers
    assert "strict-transport-security" not in claimed.headers


@pytest_asyncio.fixture
async def sqlite_shop(tmp_path: Path) -> str:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}")
    await migrate_all(settings)
    return settings.main_db_url


def test_under_shop_serve_a_client_cannot_forward_its_way_in(sqlite_shop: str, tmp_path: Path) -> None:
    """FORWARDED_ALLOW_IPS=* (what the deploy files used to set) made uvicorn believe anyone's X-Forwarded-For and
    -Proto: the app then saw a peer the client named. Here loopback is no proxy of ours, so the shop's answer to
    a client claiming to be one must be the outsider's."""
    process, base = start_serve(tmp_path, {"SHOP_MAIN_DB_URL": sqlite_shop, "SHOP_VAR_DIR": str(tmp_path / "var"),
                                           "SHOP_RUN_DIR": str(tmp_path / "run"), "SHOP_LOG_LEVEL": "warning",
                                           "SHOP_TRUSTED_PROXIES": '["10.9.0.0/16"]', "FORWARDED_ALLOW_IPS": "*"},
                                "--workers", "1", "--no-worker", within=60)
    try:
        with httpx.Client(base_url=base) as client:
            claimed = client.get("/metrics", headers={"X-Forwarded-For": "10.9.0.1", "X-Forwarded-Proto": "https"})
            logins = [client.post("/api/v1/auth/login", headers={"X-Forwarded-For": f"198.51.100.{n}"},
                                  json={"email": f"nobody-{n}@example.com", "password": "not-the-password-1"}
                                  ).status_code for n in range(ATTEMPTS)]
    finally:
        stop_serve(process)
    assert claimed.status_code == 403
    assert "strict-transport-security" not in claimed.headers
    assert logins[:30] == [401] * 30 and set(logins[30:]) == {429}, logins
