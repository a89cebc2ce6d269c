"""Local stand-ins for services the shop talks to over the network."""
