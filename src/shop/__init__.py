"""shop — an open-source e-commerce platform."""

__version__ = "0.1.0"
