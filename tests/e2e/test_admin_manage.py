"""The control panel's management pages over HTTP on every database: staff only, CSRF-checked forms, field errors
for bad input (a 4xx with the errors shown and nothing changed), and the shop seeing what staff changed."""

from __future__ import annotations

import re
import struct
import uuid
import zlib

import httpx
import pytest
import pytest_asyncio

from shop.bootstrap import build_auth, build_databases
from shop.config import Settings
from shop.domain.users import Role, User
from tests.e2e.shopping import ROLES, checkout_body, new_cart, new_product, signed_in, stock_of

PASSWORD = "panel-password-long"


async def _account(settings: Settings, role: Role) -> User:
    databases = build_databases(settings)
    try:
        return await build_auth(settings, databases).register(
            email=f"{role.value}-{uuid.uuid4().hex[:10]}@example.com", password=PASSWORD, roles=ROLES[role])
    finally:
        await databases.dispose()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, settings: Settings, role: Role) -> User:
    """A new account with `role`, signed in to the storefront session the panel uses."""
    user = await _account(settings, role)
    token = csrf_of((await client.get("/account/login")).text)
    signed = await client.post("/account/login", data={"email": user.email, "password": PASSWORD, "csrf": token,
                                                       "next": "/admin/"})
    assert signed.status_code == 303, signed.text
    return user


async def post(client: httpx.AsyncClient, path: str, data: dict[str, str], *, page: str | None = None,
               **extra: object) -> httpx.Response:
    """A form posted with the CSRF token of `page` (default: the page the form is posted to)."""
    token = csrf_of((await client.get(page or path)).text)
    return await client.post(path, data={**data, "csrf": token}, **extra)  # type: ignore[arg-type]


def field_error(html: str) -> list[str]:
    return re.findall(r'class="field-error"[^>]*>([^<]+)<', html)


@pytest_asyncio.fixture
async def staff_api(client: httpx.AsyncClient, demo_settings: Settings) -> dict[str, str]:
    return (await signed_in(client, demo_settings, Role.STAFF))[1]


async def _product(client: httpx.AsyncClient, staff_api: dict[str, str], *, stock: int = 5) -> tuple[str, str]:
    sku = await new_product(client, staff_api, stock=stock, price="20.00")
    return f"test-mug-{sku.lower()}", sku  # the slug made from its title, "Test Mug {sku}"


async def _paid_order(client: httpx.AsyncClient, staff_api: dict[str, str], *, token: str = "tok_visa") -> str:
    _, sku = await _product(client, staff_api)
    placed = await client.post("/api/v1/checkout", json=checkout_body(await new_cart(client, items={sku: 1}),
                                                                      token=token, email="Buyer@Example.com"))
    assert placed.status_code in (201, 202), placed.text
    number: str = placed.json()["number"]
    return number


PAGES = ["/admin/products", "/admin/products-new", "/admin/categories", "/admin/orders", "/admin/customers",
         "/admin/vouchers"]


async def test_the_management_pages_are_for_staff_only(client: httpx.AsyncClient, demo_settings: Settings,
                                                       staff_api: dict[str, str]) -> None:
    slug, _ = await _product(client, staff_api)
    number = await _paid_order(client, staff_api)
    pages = [*PAGES, f"/admin/products/{slug}", f"/admin/orders/{number}", "/admin/staff"]
    for path in pages:
        anonymous = await client.get(path)
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/account/login?next=")
    customer = await sign_in(client, demo_settings, Role.CUSTOMER)
    for path in [*pages, f"/admin/customers/{customer.id}"]:
        assert (await client.get(path)).status_code == 403, path
    refused = await post(client, "/admin/vouchers", {"code": "NOPE10", "kind": "fixed", "value": "1"},
                         page="/account/login")
    assert refused.status_code == 403
    staff = await sign_in(client, demo_settings, Role.STAFF)
    for path in [*pages[:-1], f"/admin/customers/{staff.id}"]:
        shown = await client.get(path)
        assert shown.status_code == 200 and "text/html" in shown.headers["content-type"], path
    assert (await client.get("/admin/staff")).status_code == 403  # admins only
    forged = await client.post("/admin/vouchers", data={"code": "FORGED10", "kind": "fixed", "value": "1",
                                                        "csrf": "0" * 64})
    assert forged.status_code == 403
    assert "FORGED10" not in (await client.get("/admin/vouchers")).text
    await sign_in(client, demo_settings, Role.ADMIN)
    assert (await client.get("/admin/staff")).status_code == 200


async def test_staff_create_and_edit_a_product_that_the_shop_then_shows(client: httpx.AsyncClient,
                                                                        demo_settings: Settings) -> None:
    await sign_in(client, demo_settings, Role.STAFF)
    sku = f"PANEL-{uuid.uuid4().hex[:8].upper()}"
    form = {"title": f"Panel Lamp {sku}", "description": "Bright.", "category": "lighting",
            "attributes": "material: brass", "sku": sku, "price": "abc", "stock": "4", "weight_grams": "900",
            "options": "Colour: Brass", "published": "1"}
    bad = await post(client, "/admin/products-new", form)
    assert bad.status_code == 422 and "nothing was saved" in bad.text and field_error(bad.text)
    assert f'value="{sku}"' in bad.text  # what was typed is kept
    assert (await client.get("/api/v1/products", params={"q": sku.lower()})).json()["total"] == 0
    created = await post(client, "/admin/products-new", {**form, "price": "49.90"})
    assert created.status_code == 303, created.text
    slug = created.headers["location"].split("/")[-1].split("?")[0]
    shop_page = await client.get(f"/p/{slug}")
    assert shop_page.status_code == 200 and "€49.90" in shop_page.text

    edited = await post(client, f"/admin/products/{slug}", {"title": "Renamed Panel Lamp", "slug": slug,
                                                            "description": "Brighter.", "category": "lighting",
                                                            "attributes": "material: brass", "published": "1"})
    assert edited.status_code == 303
    variant = await post(client, f"/admin/products/{slug}/variants",
                         {"original_sku": sku, "sku": sku, "price": "39.50", "options": "Colour: Brass",
                          "weight_grams": "900", "title": ""}, page=f"/admin/products/{slug}")
    assert variant.status_code == 303
    shop_page = await client.get(f"/p/{slug}")
    assert "Renamed Panel Lamp" in shop_page.text and "€39.50" in shop_page.text and "€49.90" not in shop_page.text

    for change, field in [({"title": ""}, "title"), ({"slug": "Bad Slug!"}, "slug"),
                          ({"attributes": "no colon here"}, "attributes"), ({"category": "no-such"}, "category"),
                          ({"title": "T" * 201}, "title"), ({"description": "d" * 10_001}, "description")]:
        values = {"title": "Renamed Panel Lamp", "slug": slug, "description": "", "category": "lighting",
                  "attributes": "", "published": "1", **change}
        refused = await post(client, f"/admin/products/{slug}", values)
        assert refused.status_code == 422 and f'id="{field}-error"' in refused.text, field
    bad_variant = await post(client, f"/admin/products/{slug}/variants",
                             {"sku": "lower case", "price": "1", "options": ""}, page=f"/admin/products/{slug}")
    assert bad_variant.status_code == 422 and 'id="new-sku-error"' in bad_variant.text
    too_dear = await post(client, f"/admin/products/{slug}/variants",
                          {"original_sku": sku, "sku": sku, "price": "1e30", "options": ""},
                          page=f"/admin/products/{slug}")
    assert too_dear.status_code == 422 and 'id="v1-price-error"' in too_dear.text
    added = await post(client, f"/admin/products/{slug}/variants",
                       {"sku": sku + "-B", "price": "44.00", "options": "Colour: Black", "weight_grams": "800"},
                       page=f"/admin/products/{slug}")
    assert added.status_code == 303
    detail = (await client.get(f"/api/v1/products/{slug}")).json()
    assert detail["title"] == "Renamed Panel Lamp" and [v["sku"] for v in detail["variants"]] == [sku, sku + "-B"]

    hidden = await post(client, f"/admin/products/{slug}/publish", {"published": "0"}, page=f"/admin/products/{slug}")
    assert hidden.status_code == 303 and (await client.get(f"/p/{slug}")).status_code == 404
    listed = await client.get("/admin/products", params={"q": sku})
    assert "Renamed Panel Lamp" in listed.text and "hidden" in listed.text


async def test_stock_is_counted_but_never_below_what_orders_hold(client: httpx.AsyncClient, demo_settings: Settings,
                                                                 staff_api: dict[str, str]) -> None:
    slug, sku = await _product(client, staff_api, stock=3)
    pending = await client.post("/api/v1/checkout", json=checkout_body(await new_cart(client, items={sku: 2}),
                                                                       token="tok_threeDSecure"))
    assert pending.status_code == 202, pending.text  # two units held while the bank asks the customer
    await sign_in(client, demo_settings, Role.STAFF)
    page = f"/admin/products/{slug}"
    low = await post(client, f"{page}/stock", {"sku": sku, "on_hand": "1"}, page=page)
    assert low.status_code == 422 and "cannot go below 2" in low.text
    assert (await stock_of(demo_settings, sku)).on_hand == 3
    for bad in ("-1", "many", "2000000"):
        refused = await post(client, f"{page}/stock", {"sku": sku, "on_hand": bad}, page=page)
        assert refused.status_code == 422 and "field-error" in refused.text, bad
    counted = await post(client, f"{page}/stock", {"sku": sku, "on_hand": "7"}, page=page)
    assert counted.status_code == 303
    level = await stock_of(demo_settings, sku)
    assert (level.on_hand, level.reserved) == (7, 2)


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
            + chunk(b"IEND", b""))


async def test_an_uploaded_picture_is_checked_stored_and_shown_in_the_shop(
        client: httpx.AsyncClient, demo_settings: Settings, staff_api: dict[str, str],
        tmp_path_factory: pytest.TempPathFactory) -> None:
    slug, _ = await _product(client, staff_api)
    await sign_in(client, demo_settings, Role.STAFF)
    page = f"/admin/products/{slug}"
    fake = await post(client, f"{page}/images", {"alt": "x"}, page=page,
                      files={"image": ("photo.png", b"just some text, not a picture", "image/png")})
    assert fake.status_code == 422 and "PNG, JPEG, WebP or GIF" in fake.text
    assert (await client.get(f"/api/v1/products/{slug}")).json()["images"] == []
    picture = _png()
    uploaded = await post(client, f"{page}/images", {"alt": "A lamp"}, page=page,
                          files={"image": ("lamp.png", picture, "image/png")})
    assert uploaded.status_code == 303, uploaded.text
    images = (await client.get(f"/api/v1/products/{slug}")).json()["images"]
    assert len(images) == 1 and re.fullmatch(r"/media/uploads/[0-9a-f]{32}\.png", images[0]["url"])
    served = await client.get(images[0]["url"])
    assert served.status_code == 200 and served.content == picture
    assert served.headers["content-type"] == "image/png" and "immutable" in served.headers["cache-control"]
    assert f'src="{images[0]["url"]}"' in (await client.get(f"/p/{slug}")).text
    assert (await client.get("/media/uploads/../../secret_key")).status_code == 404
    assert (await client.get("/media/uploads/" + "0" * 32 + ".png")).status_code == 404
    huge = await post(client, f"{page}/images", {}, page=page,
                      files={"image": ("big.png", picture + b"\0" * (6 * 1024 * 1024), "image/png")})
    assert huge.status_code == 413 and len((await client.get(f"/api/v1/products/{slug}")).json()["images"]) == 1


async def test_the_category_tree_is_edited_without_cycles_and_emptied_before_deleting(
        client: httpx.AsyncClient, demo_settings: Settings, staff_api: dict[str, str]) -> None:
    await sign_in(client, demo_settings, Role.STAFF)
    word = uuid.uuid4().hex[:6]
    parent = await post(client, "/admin/categories", {"name": f"Garden {word}", "slug": "", "parent": ""})
    assert parent.status_code == 303
    child = await post(client, "/admin/categories", {"name": f"Tools {word}", "parent": f"garden-{word}"})
    assert child.status_code == 303
    for values, field, status in [({"name": "", "parent": ""}, "name", 422),
                                  ({"name": "Odd", "slug": "Not A Slug", "parent": ""}, "slug", 422),
                                  ({"name": "Again", "slug": f"garden-{word}", "parent": ""}, "slug", 422),
                                  ({"name": "Lost", "parent": "no-such-parent"}, "parent", 422)]:
        refused = await post(client, "/admin/categories", values)
        assert refused.status_code == status and f'id="{field}-error"' in refused.text, values
    names = {c["name"] for c in (await client.get("/api/v1/categories")).json()["items"]}
    assert not names & {"Odd", "Again", "Lost"}
    cycle = await post(client, f"/admin/categories/garden-{word}/move", {"parent": f"tools-{word}"},
                       page="/admin/categories")
    assert cycle.status_code == 422 and "cannot be moved under itself" in cycle.text
    renamed = await post(client, f"/admin/categories/tools-{word}/rename", {"name": f"Hand Tools {word}"},
                         page="/admin/categories")
    assert renamed.status_code == 303
    tree = {c["slug"]: c for c in (await client.get("/api/v1/categories")).json()["items"]}
    assert tree[f"tools-{word}"]["name"] == f"Hand Tools {word}"
    moved = await post(client, f"/admin/categories/tools-{word}/move", {"parent": ""}, page="/admin/categories")
    assert moved.status_code == 303
    not_empty = await post(client, "/admin/categories/lighting/delete", {}, page="/admin/categories")
    assert not_empty.status_code == 409 and "first" in not_empty.text
    for slug in (f"tools-{word}", f"garden-{word}"):
        assert (await post(client, f"/admin/categories/{slug}/delete", {}, page="/admin/categories")).status_code == 303
    slugs = {c["slug"] for c in (await client.get("/api/v1/categories")).json()["items"]}
    assert f"garden-{word}" not in slugs and "lighting" in slugs


async def test_staff_find_an_order_and_move_it_only_where_its_state_allows(
        client: httpx.AsyncClient, demo_settings: Settings, staff_api: dict[str, str]) -> None:
    number = await _paid_order(client, staff_api)
    await sign_in(client, demo_settings, Role.STAFF)
    listed = await client.get("/admin/orders", params={"number": number, "email": "buyer@example", "status": "paid"})
    assert listed.status_code == 200 and f"/admin/orders/{number}" in listed.text
    assert f"/admin/orders/{number}" not in (await client.get("/admin/orders", params={"status": "shipped"})).text
    bad = await client.get("/admin/orders", params={"status": "lost"})
    assert bad.status_code == 422 and 'id="status-error"' in bad.text
    shown = await client.get(f"/admin/orders/{number}")
    assert "Hauptstraße 1" in shown.text and "€20.00" in shown.text and "captured" in shown.text
    page = f"/admin/orders/{number}"
    assert (await post(client, f"{page}/fulfil", {}, page=page)).status_code == 303
    assert "fulfilled" in (await client.get(page)).text
    refused = await post(client, f"{page}/cancel", {}, page=page)
    assert refused.status_code == 409 and "cannot become canceled" in refused.text
    assert (await client.get(f"/api/v1/orders/{number}", headers=staff_api)).json()["status"] == "fulfilled"
    assert (await post(client, f"{page}/refund", {}, page=page)).status_code == 303
    assert (await client.get(f"/api/v1/orders/{number}", headers=staff_api)).json()["status"] == "refunded"
    assert (await client.get("/admin/orders/999999999")).status_code == 404


async def test_a_disabled_customer_is_signed_out_everywhere_and_cannot_sign_in(
        client: httpx.AsyncClient, demo_settings: Settings) -> None:
    customer = await sign_in(client, demo_settings, Role.CUSTOMER)
    storefront_session = client.cookies.get("shop_session")
    api = (await client.post("/api/v1/auth/login", json={"email": customer.email, "password": PASSWORD})).json()
    staff = await sign_in(client, demo_settings, Role.STAFF)
    found = await client.get("/admin/customers", params={"email": customer.email.split("@")[0].upper()})
    assert f"/admin/customers/{customer.id}" in found.text
    page = f"/admin/customers/{customer.id}"
    assert (await post(client, f"{page}/disable", {}, page=page)).status_code == 303
    assert "disabled" in (await client.get(page)).text
    assert (await client.post("/api/v1/auth/refresh", json={"refresh_token": api["refresh_token"]})).status_code == 401
    refused = await client.post("/api/v1/auth/login", json={"email": customer.email, "password": PASSWORD})
    assert refused.status_code in (401, 403, 409) and "access_token" not in refused.text
    at_the_door = await post(client, "/account/login", {"email": customer.email, "password": PASSWORD})
    assert at_the_door.status_code == 403 and "This account is disabled" in at_the_door.text
    myself = await post(client, f"/admin/customers/{staff.id}/disable", {}, page=f"/admin/customers/{staff.id}")
    assert myself.status_code == 409 and "your own account" in myself.text
    assert (await client.get("/admin/customers")).status_code == 200  # still signed in, still active
    assert (await post(client, f"{page}/enable", {}, page=page)).status_code == 303
    assert (await client.post("/api/v1/auth/login", json={"email": customer.email,
                                                          "password": PASSWORD})).status_code == 200
    client.cookies.set("shop_session", storefront_session or "")
    assert (await client.get("/account")).status_code == 303  # that storefront session ended with the disabling


async def test_vouchers_are_created_with_field_errors_and_deactivated(client: httpx.AsyncClient,
                                                                      demo_settings: Settings) -> None:
    await sign_in(client, demo_settings, Role.STAFF)
    code = f"PANEL{uuid.uuid4().hex[:6].upper()}"
    good = {"code": code, "kind": "percentage", "value": "15", "min_order": "30.00", "starts_at": "2026-01-01T00:00",
            "ends_at": "2036-01-01T00:00", "usage_limit": "100", "per_customer_limit": "1"}
    for change, field in [({"code": "x"}, "code"), ({"kind": "free"}, "kind"), ({"value": "150"}, "value"),
                          ({"value": "abc"}, "value"), ({"min_order": "lots"}, "min_order"),
                          ({"ends_at": "2025-01-01T00:00"}, "ends_at"), ({"starts_at": "soon"}, "starts_at"),
                          ({"usage_limit": "0"}, "usage_limit"), ({"per_customer_limit": "x"}, "per_customer_limit"),
                          ({"value": "1" * 21}, "value"), ({"kind": "fixed", "value": "1e15"}, "value"),
                          ({"min_order": "1e27"}, "min_order"), ({"ends_at": "0001-01-01T00:00+05:00"}, "ends_at")]:
        refused = await post(client, "/admin/vouchers", {**good, **change})
        assert refused.status_code == 422 and f'id="{field}-error"' in refused.text, change
    assert code not in (await client.get("/admin/vouchers")).text
    assert (await post(client, "/admin/vouchers", good)).status_code == 303
    taken = await post(client, "/admin/vouchers", good)
    assert taken.status_code == 409 and 'id="code-error"' in taken.text
    staff_api = (await signed_in(client, demo_settings, Role.STAFF))[1]
    listed = {v["code"]: v for v in (await client.get("/api/v1/vouchers", headers=staff_api)).json()["items"]}
    assert listed[code]["active"] is True and listed[code]["per_customer_limit"] == 1
    assert listed[code]["starts_at"].startswith("2026-01-01T00:00:00")
    assert (await post(client, f"/admin/vouchers/{code}/deactivate", {}, page="/admin/vouchers")).status_code == 303
    listed = {v["code"]: v for v in (await client.get("/api/v1/vouchers", headers=staff_api)).json()["items"]}
    assert listed[code]["active"] is False


async def test_admins_give_and_take_staff_roles_but_keep_their_own(client: httpx.AsyncClient,
                                                                   demo_settings: Settings) -> None:
    helper = await _account(demo_settings, Role.CUSTOMER)
    admin = await sign_in(client, demo_settings, Role.ADMIN)
    for values, field in [({"email": "not-an-address", "role": "staff"}, "email"),
                          ({"email": "nobody-here@example.com", "role": "staff"}, "email"),
                          ({"email": helper.email, "role": "owner"}, "role")]:
        refused = await post(client, "/admin/staff", values)
        assert refused.status_code == 422 and f'id="{field}-error"' in refused.text, values
    assert helper.email not in (await client.get("/admin/staff")).text
    assert (await post(client, "/admin/staff", {"email": helper.email, "role": "staff"})).status_code == 303
    assert helper.email in (await client.get("/admin/staff")).text
    own = await post(client, f"/admin/staff/{admin.id}/revoke", {"role": "admin"}, page="/admin/staff")
    assert own.status_code == 409 and "your own admin role" in own.text
    assert "admin" in (await client.get(f"/admin/customers/{admin.id}")).text
    assert (await post(client, f"/admin/staff/{helper.id}/revoke", {"role": "staff"},
                       page="/admin/staff")).status_code == 303
    assert helper.email not in (await client.get("/admin/staff")).text
