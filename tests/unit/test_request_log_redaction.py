"""What the request log keeps of headers, query strings and bodies: names yes, secret values never."""

from __future__ import annotations

import orjson

from shop.web.client import TrustedProxies
from shop.web.redaction import REDACTED, UNREADABLE, redact_body, redact_headers, redact_query
from shop.web.request_record import _Redacted


def test_secret_headers_are_replaced_and_the_rest_kept() -> None:
    kept = redact_headers([(b"Authorization", b"Bearer eyJ.secret"), (b"cookie", b"shop_session=s3cr3t"),
                           (b"proxy-authorization", b"Basic Zm9vOmJhcg=="), (b"x-api-key", b"k-123"),
                           (b"x-order-key", b"ok-9"), (b"set-cookie", b"a=1"), (b"user-agent", b"curl/8"),
                           (b"idempotency-key", b"a4f0"), (b"accept", b"text/html"), (b"accept", b"*/*")])
    assert kept["authorization"] == kept["cookie"] == kept["proxy-authorization"] == REDACTED
    assert kept["x-api-key"] == kept["x-order-key"] == kept["set-cookie"] == REDACTED
    assert kept["user-agent"] == "curl/8" and kept["idempotency-key"] == "a4f0"
    assert kept["accept"] == "text/html, */*"
    assert "s3cr3t" not in orjson.dumps(kept).decode()


def test_a_referer_keeps_its_page_but_not_the_token_in_its_query() -> None:
    kept = redact_headers([(b"referer", b"https://shop.test/account/reset?token=abc123&lang=de")])
    assert kept["referer"] == f"https://shop.test/account/reset?token={REDACTED}&lang=de"


def test_query_parameters_named_like_secrets_lose_their_values_only() -> None:
    raw = "q=linen+shirt&access_token=abc&Password=hunter2&card_number=4242&otp=123456&page=2&flag"
    assert redact_query(raw) == (f"q=linen+shirt&access_token={REDACTED}&Password={REDACTED}"
                                 f"&card_number={REDACTED}&otp={REDACTED}&page=2&flag")
    assert redact_query("pass%77ord=x") == f"pass%77ord={REDACTED}"  # an encoded name is decoded first
    assert redact_query("") == ""


def test_json_bodies_keep_field_names_and_lose_secret_values_at_any_depth() -> None:
    body = orjson.dumps({"email": "a@b.test", "password": "hunter2", "payment": {"token": "tok_visa"},
                         "card": {"number": "4242424242424242", "cvc": "123"}, "items": [{"refresh_token": "r"}],
                         "newPassword": "x", "code": "654321", "quantity": 2})
    kept = redact_body("application/json", body)
    assert kept == {"email": "a@b.test", "password": REDACTED, "payment": {"token": REDACTED}, "card": REDACTED,
                    "items": [{"refresh_token": REDACTED}], "newPassword": REDACTED, "code": REDACTED,
                    "quantity": 2}


def test_form_bodies_are_read_as_fields_with_repeats_kept() -> None:
    kept = redact_body("application/x-www-form-urlencoded",
                       b"email=a%40b.test&password=hunter2&csrf=abc&tag=a&tag=b")
    assert kept == {"email": "a@b.test", "password": REDACTED, "csrf": REDACTED, "tag": ["a", "b"]}


def test_a_body_that_does_not_parse_is_marked_not_kept() -> None:
    assert redact_body("application/json", b'{"password": "hun') == UNREADABLE
    assert redact_body("application/x-www-form-urlencoded", b"\xff\xfe") == UNREADABLE


def test_forwarded_for_is_read_from_the_right_skipping_trusted_proxies() -> None:
    trusted = TrustedProxies(["127.0.0.0/8", "10.0.0.0/8"])
    assert "127.0.0.1" in trusted and "10.1.2.3" in trusted and "203.0.113.9" not in trusted
    assert "not-an-ip" not in trusted
    # a client may put anything at the left; only what our proxies appended counts
    assert trusted.client_of("1.1.1.1, 203.0.113.9, 10.0.0.5") == "203.0.113.9"
    assert trusted.client_of("10.0.0.7, 10.0.0.5") == "10.0.0.7"
    assert trusted.client_of("garbage, 203.0.113.9") == "203.0.113.9"  # left of the client: never read
    # garbage where the client should be: unknown, never the trusted peer (tests/unit/test_trusted_proxies.py)
    assert trusted.client_of("203.0.113.9, garbage") == "unknown"


def test_remembered_header_lists_give_the_same_record_and_never_keep_a_secret() -> None:
    remember = _Redacted(size=2)
    plain = [(b"host", b"shop.example"), (b"accept", b"application/json")]
    first = remember(plain)
    assert first == {"host": "shop.example", "accept": "application/json"}
    assert remember(list(plain)) is first  # the same content: the remembered answer
    secret = [(b"host", b"shop.example"), (b"cookie", b"shop_session=abc123")]
    assert remember(secret) == {"host": "shop.example", "cookie": "[redacted]"}
    assert all("abc123" not in repr(key) for key in remember._known)  # a list with a secret is not kept
    for n in range(5):  # bounded: it forgets rather than grows
        remember([(b"host", f"h{n}".encode())])
    assert len(remember._known) <= 2
