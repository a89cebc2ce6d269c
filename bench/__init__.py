"""Benchmarks for the shop: `python -m bench.catalog` measures the catalogue API against reference apps."""
