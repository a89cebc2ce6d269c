"""What checkout and the payment webhooks tell the rest of the shop once it has happened (committed): the
metrics count orders, payments and revenue from here, whichever channel (API, storefront, webhook) it came by."""

from __future__ import annotations

from typing import Protocol

from shop.domain.orders import Order


class CommerceEvents(Protocol):
    def order_placed(self, order: Order) -> None:
        """An order exists, in the state its first payment attempt left it (paid, pending or canceled)."""
        ...

    def payment_captured(self, order: Order) -> None: ...

    def payment_declined(self, order: Order) -> None: ...


class NoEvents:
    """Nobody listening."""

    def order_placed(self, order: Order) -> None:
        return None

    def payment_captured(self, order: Order) -> None:
        return None

    def payment_declined(self, order: Order) -> None:
        return None
