"""Messages the shop sends to people: an e-mail is checked here, once, before anything can queue or send it.

Every header value is refused if it holds a line break or another control character, so no caller can smuggle a
header (e.g. a `Bcc:`) into a message, however the value reached us.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shop.domain.errors import InvalidValue

MAX_ADDRESS = 254  # RFC 5321's limit on a forward path
MAX_LOCAL_PART = 64
MAX_SUBJECT = 255
MAX_RECIPIENTS = 50
# characters that would start a second address, a display name, a comment or a route in an address header
_ADDRESS_SPECIALS = frozenset('<>()[]\\,;:"')


def _has_control(value: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in value)


def check_address(value: object, *, field_name: str = "to") -> str:
    """An e-mail address kept deliberately simple: printable ASCII, one @, something on both sides."""
    if not isinstance(value, str):
        raise InvalidValue(field_name, "an e-mail address must be text")
    # the offending value is never repeated in the message: it may carry the very header being smuggled in
    if _has_control(value):
        raise InvalidValue(field_name, "an e-mail address may not contain line breaks or control characters")
    if not value.isascii():
        raise InvalidValue(field_name, "only ASCII e-mail addresses are supported")
    if any(ch.isspace() or ch in _ADDRESS_SPECIALS for ch in value):
        raise InvalidValue(field_name, "an e-mail address may not contain spaces or any of <>()[]\\,;:\"")
    if value.count("@") != 1:
        raise InvalidValue(field_name, "an e-mail address needs exactly one @")
    local, domain = value.split("@")
    if not local or not domain:
        raise InvalidValue(field_name, "an e-mail address needs a name before the @ and a domain after it")
    if len(value) > MAX_ADDRESS or len(local) > MAX_LOCAL_PART:
        raise InvalidValue(field_name, f"an e-mail address is at most {MAX_ADDRESS} characters")
    if domain.startswith(".") or domain.endswith(".") or ".." in domain:
        raise InvalidValue(field_name, "the domain of an e-mail address has an empty label")
    return value


def check_header_text(value: object, *, field_name: str, limit: int = MAX_SUBJECT) -> str:
    """Free text for a header (a subject, a display name): one line, no control characters."""
    if not isinstance(value, str):
        raise InvalidValue(field_name, "must be text")
    if _has_control(value):
        raise InvalidValue(field_name, "may not contain line breaks or control characters")
    if len(value) > limit:
        raise InvalidValue(field_name, f"is at most {limit} characters")
    return value


@dataclass(frozen=True, slots=True)
class Email:
    """One e-mail to one or more recipients: a plain-text body and, usually, an HTML alternative.

    The bodies may hold secrets (a verification or password-reset link), so they are left out of `repr`.
    """

    to: tuple[str, ...]
    subject: str
    text: str = field(repr=False)
    html: str | None = field(default=None, repr=False)
    reply_to: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.to, str) or not isinstance(self.to, Sequence):
            raise InvalidValue("to", "give the recipients as a list of addresses")
        if not self.to:
            raise InvalidValue("to", "an e-mail needs at least one recipient")
        if len(self.to) > MAX_RECIPIENTS:
            raise InvalidValue("to", f"at most {MAX_RECIPIENTS} recipients")
        object.__setattr__(self, "to", tuple(check_address(a) for a in self.to))
        check_header_text(self.subject, field_name="subject")
        if not self.subject.strip():
            raise InvalidValue("subject", "an e-mail needs a subject")
        if not isinstance(self.text, str) or not self.text.strip():
            raise InvalidValue("text", "an e-mail needs a plain-text body")
        if self.html is not None and not isinstance(self.html, str):
            raise InvalidValue("html", "must be text")
        if self.reply_to is not None:
            check_address(self.reply_to, field_name="reply_to")

    def to_payload(self) -> dict[str, Any]:
        """A JSON-ready dict, what the outbox keeps until the e-mail is sent."""
        return {"to": list(self.to), "subject": self.subject, "text": self.text, "html": self.html,
                "reply_to": self.reply_to}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Email:
        """The e-mail back from `to_payload`'s dict; checked again, as anything read back from storage is."""
        to = payload.get("to")
        if not isinstance(to, list):
            raise InvalidValue("to", "give the recipients as a list of addresses")
        return cls(to=tuple(to), subject=payload.get("subject", ""), text=payload.get("text", ""),
                   html=payload.get("html"), reply_to=payload.get("reply_to"))
