"""Rendering storefront pages: one Jinja2 environment, autoescaped, with `asset()` and money formatting."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.responses import HTMLResponse, Response

from shop.domain.catalog import search_terms
from shop.domain.money import Money
from shop.web.assets import Assets
from shop.web.storefront.visitor import Visitor

TEMPLATES = Path(__file__).parent / "templates"
_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "CHF": "CHF "}


def format_money(value: Money | dict[str, str] | None) -> str:
    """12.5 EUR → €12.50: the amount exactly as the domain computed it, with the currency's sign."""
    if value is None:
        return ""
    amount, currency = (value.amount, value.currency) if isinstance(value, Money) else \
        (value["amount"], value["currency"])
    symbol = _SYMBOLS.get(currency)
    text = f"{amount}"
    if text.startswith("-"):
        return f"−{symbol}{text[1:]}" if symbol else f"−{text[1:]} {currency}"
    return f"{symbol}{text}" if symbol else f"{text} {currency}"


def highlight(text: str, query: str | None) -> Markup:
    """The text, escaped, with the words of the search marked."""
    terms = search_terms(query or "")
    if not terms:
        return escape(text)
    pattern = re.compile("(" + "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)) + ")",
                         re.IGNORECASE)
    parts = pattern.split(text)
    return Markup("").join(Markup("<mark>") + escape(p) + Markup("</mark>") if i % 2 else escape(p)
                           for i, p in enumerate(parts))


class Pages:
    def __init__(self, *, assets: Assets, shop_name: str) -> None:
        self.assets = assets
        self.env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                               auto_reload=False,
                               trim_blocks=True, lstrip_blocks=True)
        self.env.globals.update(asset=assets.url, integrity=self._integrity, shop_name=shop_name,
                                cdn=assets.cdn_base is not None)
        self.env.filters.update(money=format_money, highlight=highlight)

    def _integrity(self, path: str) -> Markup:
        if self.assets.cdn_base is None:
            return Markup("")
        return Markup(' integrity="{}" crossorigin="anonymous"').format(self.assets.integrity(path))

    def render(self, visitor: Visitor, template: str, *, status: int = 200, **context: Any) -> Response:
        html = self.env.get_template(template).render(visitor=visitor, user=visitor.user, csrf=visitor.csrf_token,
                                                      **context)
        return visitor.apply(HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"}))
