"""`MailTemplates` with Jinja2: each e-mail is `<name>.subject.txt`, `<name>.txt` and `<name>.html` in
`templates/`. HTML is autoescaped; plain text is not (it is never interpreted as markup)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from shop.domain.errors import InvalidValue
from shop.domain.messages import Email

TEMPLATES = Path(__file__).parent / "templates"


class JinjaMailTemplates:
    """Renders the shop's e-mails; `shop_name` and `support_email` are available to every template."""

    def __init__(self, *, shop_name: str = "shop", support_email: str | None = None,
                 directory: Path = TEMPLATES) -> None:
        self._env = Environment(
            loader=FileSystemLoader(directory),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
            undefined=StrictUndefined,  # a missing link fails loudly instead of sending an e-mail without it
            keep_trailing_newline=True,
            auto_reload=False,  # templates ship with the code: no file-time check on every render
        )
        self._env.globals.update(shop_name=shop_name, support_email=support_email)
        self.names = frozenset(p.name.removesuffix(".subject.txt") for p in directory.glob("*.subject.txt"))

    def render(self, template: str, /, *, to: str | Sequence[str], reply_to: str | None = None,
               **context: object) -> Email:
        if template not in self.names:
            raise KeyError(f"no e-mail template named {template!r}")
        for key, value in context.items():
            # a link is only ever to the shop's web pages; never javascript:, data: or mailto: from user input
            if key.endswith(("link", "url")) and not str(value).startswith(("https://", "http://")):
                raise InvalidValue(key, "must be an http(s) URL")
        subject = " ".join(self._env.get_template(f"{template}.subject.txt").render(context).split())
        text = self._env.get_template(f"{template}.txt").render(context)
        html = self._env.get_template(f"{template}.html").render(context)
        recipients = (to,) if isinstance(to, str) else tuple(to)
        return Email(to=recipients, subject=subject, text=text, html=html, reply_to=reply_to)
