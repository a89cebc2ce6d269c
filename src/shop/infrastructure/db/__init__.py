"""SQL stores: engines, one package per store (tables, repositories), migrations."""
