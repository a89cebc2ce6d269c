"""The HTTP edge: JSON API, storefront pages, control panel."""
