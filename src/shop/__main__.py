"""`python -m shop` is the `shop` command."""

from shop.cli import main

main()
