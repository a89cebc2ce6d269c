"""An `Email` as an RFC 5322 message: multipart/alternative (plain text, then HTML) built with the stdlib."""

from __future__ import annotations

from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from shop.domain.messages import Email, check_address, check_header_text
from shop.infrastructure.db.types import utcnow


@dataclass(frozen=True, slots=True)
class Sender:
    """Who the shop's mail comes from: `address`, shown as `name` when there is one."""

    address: str
    name: str = ""

    def __post_init__(self) -> None:
        check_address(self.address, field_name="mail_from")
        check_header_text(self.name, field_name="mail_from_name", limit=100)

    @property
    def header(self) -> Address:
        local, domain = self.address.split("@")
        return Address(display_name=self.name, username=local, domain=domain)


def build_message(email: Email, sender: Sender) -> EmailMessage:
    """The message to send; `email` was already checked, so no header can carry a line break."""
    message = EmailMessage()
    message["From"] = sender.header
    message["To"] = ", ".join(email.to)
    if email.reply_to:
        message["Reply-To"] = email.reply_to
    message["Subject"] = email.subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(domain=sender.address.split("@")[1])
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: auto-responders leave it alone
    message.set_content(email.text)
    if email.html is not None:
        message.add_alternative(email.html, subtype="html")
    return message
