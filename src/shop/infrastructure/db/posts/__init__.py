"""The posts store: the catalogue."""
