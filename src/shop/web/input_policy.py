"""The shop's one input policy: no text that reaches it may hold control characters.

A control character is one of Unicode's category Cc (U+0000-U+001F, U+007F-U+009F). No page or client of the shop
has a use for one; PostgreSQL refuses a NUL (the request would fail with a 500), SQLite and MariaDB would store it.
Where each kind of input is checked, and what may hold a tab or a line break (\\t \\n \\r):

- the path and every query parameter, name and value: nothing allowed (`InputPolicy`, before any route runs: 400);
- header values: a tab only, as HTTP allows (`InputPolicy`: 400 naming the header, e.g. `idempotency-key`);
- JSON bodies: every text field of a `StrictInput` model, dictionary keys and values too; a field marked
  `MULTILINE` (a product's description) may also hold tabs and line breaks (422 naming the field);
- forms (`check_form`, where the storefront and the control panel read one): every field, and only the control
  panel's text areas (a description, attributes one per line) may hold tabs and line breaks (a 400 page naming
  the field).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

_ANY_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINE_BREAKS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_HEADER_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # RFC 9110: a field value may hold a tab, no other CTL
# a control character in a raw query string, as Starlette will decode it: escaped (%00-%1F, %7F, or a C1 control in
# UTF-8, %C2%80-%C2%9F), or a raw byte (Starlette reads raw bytes as Latin-1, where 0x80-0x9F are C1 controls)
_QUERY_CONTROL = re.compile(rb"%(?:[01][0-9A-Fa-f]|7[Ff]|[Cc]2%[89][0-9A-Fa-f])|[\x00-\x1f\x7f-\x9f]")


class InputRefused(Exception):
    """A request carrying text the shop does not take (400, naming where it was)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def text_problem(text: str, *, multiline: bool = False) -> str | None:
    """Why the shop does not take `text`, or None when it does; `multiline` text may hold tabs and line breaks."""
    if (_CONTROL_BUT_LINE_BREAKS if multiline else _ANY_CONTROL).search(text) is None:
        return None
    if multiline:
        return "may not contain control characters other than tabs and line breaks"
    return "may not contain control characters"


def check_form(form: FormData, *, multiline: Collection[str] = ()) -> None:
    """Refuse a posted form with a control character in any field, naming the field; the fields named in
    `multiline` may hold tabs and line breaks. Uploaded files are not text and pass."""
    for name, value in form.multi_items():
        if text_problem(name) is not None:
            raise InputRefused("form", "a field name may not contain control characters")
        if isinstance(value, str):
            problem = text_problem(value, multiline=name in multiline)
            if problem is not None:
                raise InputRefused(name, problem)


def refusal(scope: Scope) -> InputRefused | None:
    """What is wrong with a request's path, query string or headers, if anything."""
    problem = text_problem(scope["path"])
    if problem is not None:
        return InputRefused("path", problem)
    raw = scope.get("query_string", b"")
    if raw and _QUERY_CONTROL.search(raw):
        for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):  # as Starlette reads it
            if text_problem(name) is not None:
                return InputRefused("query", "a parameter name may not contain control characters")
            problem = text_problem(value)
            if problem is not None:
                return InputRefused(name, problem)
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    if _HEADER_CONTROL.search(b"\t".join(value for _, value in headers)):
        name = next(name for name, value in headers if _HEADER_CONTROL.search(value))
        return InputRefused(name.decode("latin-1").lower(), "may not contain control characters")
    return None


class InputPolicy:
    """Refuses a request whose path, query string or headers hold a control character before any route sees it,
    answered by the app's own handler for InputRefused (a problem, or the storefront's page for a page)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = refusal(scope) if scope["type"] == "http" else None
        if refused is None:
            await self.app(scope, receive, send)
            return
        handler = self.app.exception_handlers.get(InputRefused)
        if handler is None:
            response: Response = PlainTextResponse(str(refused), status_code=400)
        else:
            response = await handler(Request({**scope, "app": self.app}), refused)
        await response(scope, receive, send)
