"""Errors the domain raises; the edges translate them into HTTP problems or CLI messages."""

from __future__ import annotations


class DomainError(Exception):
    """Base for every rule the shop refuses to break."""


class InvalidValue(DomainError):
    """A value that breaks a rule; `field` names what was wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotFound(DomainError):
    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} {key!r} does not exist")
        self.kind = kind
        self.key = key


class Conflict(DomainError):
    """The change clashes with what is stored (a taken slug or SKU, an illegal state change): 409."""


class CurrencyMismatch(DomainError):
    def __init__(self, left: str, right: str) -> None:
        super().__init__(f"cannot combine {left} with {right}")
        self.left = left
        self.right = right


class InvalidQuantity(DomainError):
    def __init__(self, quantity: int) -> None:
        super().__init__(f"quantity must be a positive whole number, got {quantity}")
        self.quantity = quantity


class OutOfStock(DomainError):
    def __init__(self, sku: str, *, requested: int, available: int) -> None:
        super().__init__(f"{sku}: {requested} requested, {available} available")
        self.sku = sku
        self.requested = requested
        self.available = available
