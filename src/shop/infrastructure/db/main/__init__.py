"""The main store: stock, carts, orders, payments, outbox, request log."""
