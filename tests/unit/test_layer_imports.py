"""The inner layers import from an allow-list, not around a deny-list: the domain the standard library only, the
services the standard library, the domain and themselves. A new third-party package or a reach outwards fails here
with the rule that it breaks (import-linter cannot say "standard library only"; pyproject.toml has the rest)."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import shop

SRC = Path(shop.__file__).parent
RULES = {
    "shop.domain": (("shop.domain",), "the domain is plain Python: entities, values and rules, no I/O and no "
                                      "framework; what needs a library belongs in shop.infrastructure, behind a port"),
    "shop.services": (("shop.domain", "shop.services"), "services speak to the world through the ports they define "
                                                        "(typing.Protocol in shop.services); an adapter that needs a "
                                                        "library or a database lives in shop.infrastructure and is "
                                                        "wired in shop.bootstrap"),
}


def imported(path: Path, package: str) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in a file, wherever it stands (in a function, under TYPE_CHECKING too)."""
    module = f"{package}.{path.stem}" if path.stem != "__init__" else package
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the importing module's package
                base = module.split(".")[: -node.level] if path.stem != "__init__" else \
                    module.split(".")[: len(module.split(".")) - node.level + 1]
                if node.module:
                    yield node.lineno, ".".join([*base, node.module])
                else:  # from .. import x: x is a module of that package
                    for alias in node.names:
                        yield node.lineno, ".".join([*base, alias.name])
            else:
                yield node.lineno, node.module or ""


def outside(root: Path, layer: str, allowed: tuple[str, ...]) -> list[str]:
    """Each import of the layer's modules that is neither the standard library nor in `allowed`."""
    found = []
    for path in sorted(root.rglob("*.py")):
        package = ".".join([layer, *path.parent.relative_to(root).parts])
        for line, name in imported(path, package):
            top = name.split(".", 1)[0]
            if top in sys.stdlib_module_names:
                continue
            if any(name == ok or name.startswith(ok + ".") for ok in allowed):
                continue
            found.append(f"{path.relative_to(root.parent.parent)}:{line} imports {name}")
    return found


@pytest.mark.parametrize("layer", RULES)
def test_an_inner_layer_imports_the_standard_library_and_its_allow_list_only(layer: str) -> None:
    allowed, why = RULES[layer]
    root = SRC / layer.removeprefix("shop.")
    assert root.is_dir()
    found = outside(root, layer, allowed)
    assert not found, (f"{layer} may import the standard library and {', '.join(allowed)} only: {why}.\n  "
                       + "\n  ".join(found))


def test_the_allow_list_catches_a_third_party_package_a_relative_reach_and_an_import_in_a_function(
        tmp_path: Path) -> None:
    root = tmp_path / "shop" / "domain"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "money.py").write_text("from __future__ import annotations\nimport json\nfrom decimal import Decimal\n"
                                   "from shop.domain.errors import InvalidValue\nfrom . import errors\n")
    (root / "sub" / "rules.py").write_text("import orjson\nfrom ... import services\n"
                                           "def later():\n    from sqlalchemy import select\n")
    assert outside(root, "shop.domain", ("shop.domain",)) == [
        "shop/domain/sub/rules.py:1 imports orjson",
        "shop/domain/sub/rules.py:2 imports shop.services",
        "shop/domain/sub/rules.py:4 imports sqlalchemy",
    ]
