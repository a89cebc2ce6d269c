"""Adapters: how the shop talks to databases and other services. They implement the ports in services."""
