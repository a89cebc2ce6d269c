"""Who gets into the control panel: staff only, with two-factor sign-in when the shop demands it, and every
form there carries the visitor's CSRF token."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pyotp
import pytest
import pytest_asyncio

from shop.bootstrap import build_auth, build_databases
from shop.config import Settings
from shop.domain.users import Role
from tests.conftest import open_client
from tests.e2e.shopping import PASSWORD, ROLES

PAGES = ["/admin/", "/admin/business", "/admin/requests", "/admin/workers"]
JSON_ENDPOINTS = ["/admin/api/usage", "/admin/api/workers"]
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def new_account(settings: Settings, role: Role) -> str:
    email = f"{role.value}-{uuid.uuid4().hex[:10]}@example.com"
    databases = build_databases(settings)
    try:
        await build_auth(settings, databases).register(email=email, password=PASSWORD, roles=ROLES[role])
    finally:
        await databases.dispose()
    return email


def csrf_of(page: httpx.Response) -> str:
    found = _CSRF.search(page.text)
    assert found, page.text[:500]
    return found[1]


async def sign_in(client: httpx.AsyncClient, email: str, *, next_page: str = "/admin/") -> httpx.Response:
    """Through the storefront's sign-in form, as a person would; the session cookie stays on the client."""
    form = await client.get("/account/login")
    return await client.post("/account/login", data={"csrf": csrf_of(form), "email": email, "password": PASSWORD,
                                                     "next": next_page})


async def signed_in_as(client: httpx.AsyncClient, settings: Settings, role: Role) -> str:
    email = await new_account(settings, role)
    response = await sign_in(client, email)
    assert response.status_code == 303, response.text
    return email


def panel_settings(settings: Settings, tmp_path: Path, **changes: object) -> Settings:
    return settings.model_copy(update={"response_cache": False, "var_dir": tmp_path, "run_dir": tmp_path / "run",
                                       **changes})


@pytest_asyncio.fixture
async def panel(demo_settings: Settings, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in open_client(panel_settings(demo_settings, tmp_path)):
        yield client


async def test_anonymous_visitors_are_sent_to_sign_in_and_come_back(panel: httpx.AsyncClient) -> None:
    for page in PAGES:
        response = await panel.get(page)
        assert response.status_code == 303, page
        assert response.headers["location"] == f"/account/login?next={page}"
    deep = await panel.get("/admin/requests?status=5xx&path=/api/")
    assert deep.headers["location"] == "/account/login?next=/admin/requests%3Fstatus%3D5xx%26path%3D/api/"
    for endpoint in JSON_ENDPOINTS:
        refused = await panel.get(endpoint)
        assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"


async def test_signing_in_from_the_redirect_lands_on_the_panel(panel: httpx.AsyncClient,
                                                               demo_settings: Settings) -> None:
    email = await new_account(demo_settings, Role.STAFF)
    response = await sign_in(panel, email, next_page="/admin/requests?status=404")
    assert response.headers["location"] == "/admin/requests?status=404"
    assert (await panel.get(response.headers["location"])).status_code == 200


async def test_customers_are_refused(panel: httpx.AsyncClient, demo_settings: Settings) -> None:
    await signed_in_as(panel, demo_settings, Role.CUSTOMER)
    for page in PAGES:
        response = await panel.get(page)
        assert response.status_code == 403, page
        assert "Staff only" in response.text and "/admin/workers" not in response.text  # no navigation
    for endpoint in JSON_ENDPOINTS:
        assert (await panel.get(endpoint)).status_code == 403


@pytest.mark.parametrize("role", [Role.STAFF, Role.ADMIN])
async def test_staff_and_admins_see_every_page(panel: httpx.AsyncClient, demo_settings: Settings,
                                               role: Role) -> None:
    email = await signed_in_as(panel, demo_settings, role)
    for page in PAGES:
        response = await panel.get(page)
        assert response.status_code == 200, (page, response.text[:300])
        assert email in response.text
        assert response.headers["cache-control"] == "no-store"
        assert "script-src 'self'" in response.headers["content-security-policy"]
        for link in ("Dashboard", "Business", "Requests", "Workers"):
            assert f">{link}</a>" in response.text


async def test_the_shop_can_require_staff_to_switch_on_two_factor_sign_in(demo_settings: Settings,
                                                                         tmp_path: Path) -> None:
    async for client in open_client(panel_settings(demo_settings, tmp_path, require_staff_2fa=True)):
        await signed_in_as(client, demo_settings, Role.STAFF)
        sent = await client.get("/admin/business")
        assert sent.status_code == 303 and sent.headers["location"] == "/admin/two-factor"
        assert (await client.get("/admin/api/usage")).status_code == 403

        setup = await client.get("/admin/two-factor")
        assert setup.status_code == 200 and "requires staff to sign in with a second factor" in setup.text
        secret = re.search(r'name="secret" value="([A-Z2-7]+)"', setup.text)
        assert secret
        wrong = await client.post("/admin/two-factor", data={"csrf": csrf_of(setup), "code": "000000",
                                                              "secret": secret[1], "uri": "otpauth://x"})
        assert wrong.status_code == 422 and "That code is not right" in wrong.text
        assert secret[1] in wrong.text  # the same secret, already scanned, stays on the page
        assert (await client.get("/admin/")).status_code == 303  # still not switched on

        done = await client.post("/admin/two-factor", data={"csrf": csrf_of(setup),
                                                             "code": pyotp.TOTP(secret[1]).now()})
        assert done.status_code == 200 and "recovery codes" in done.text
        assert len(re.findall(r"<li><code>[0-9a-f]{4}-[0-9a-f]{4}</code></li>", done.text)) == 10
        assert (await client.get("/admin/business")).status_code == 200


async def test_panel_forms_without_the_visitors_csrf_token_are_refused(panel: httpx.AsyncClient,
                                                                       demo_settings: Settings) -> None:
    await signed_in_as(panel, demo_settings, Role.STAFF)
    page = await panel.get("/admin/workers")
    for data in ({"pool": "main", "workers": "2"}, {"pool": "main", "workers": "2", "csrf": "f" * 64},
                 {"pool": "main", "workers": "2", "csrf": csrf_of(page) + "0"}):
        refused = await panel.post("/admin/workers/size", data=data)
        assert refused.status_code == 403 and "Please try again" in refused.text
    assert (await panel.post("/admin/two-factor", data={"code": "123456"})).status_code == 403
    # the token taken from another visitor's page is no good either
    async with httpx.AsyncClient(transport=panel._transport, base_url=str(panel.base_url)) as stranger:
        stolen = csrf_of(await stranger.get("/account/login"))
    refused = await panel.post("/admin/workers/size", data={"pool": "main", "workers": "2", "csrf": stolen})
    assert refused.status_code == 403
