"""What the posts store does its own way on each database family: ranked full-text search, and the serial ids
after rows written with explicit ids.

`bootstrap.py` picks one (`dialect_for`) for the posts store's engine and hands it to the catalogue's reader (as
its `CatalogSearch`) and writer (as its `IdSequences`); nothing else in this package asks which database it is on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Select, and_, bindparam, cast, func, literal_column, select, text
from sqlalchemy.dialects.mysql import match as mysql_match
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.ext.asyncio import AsyncConnection

from shop.infrastructure.db.posts.tables import products


@dataclass(frozen=True, slots=True)
class SearchShape:
    """What a search statement depends on besides its parameters (MariaDB: how many short and long words)."""

    short_words: int = 0
    long_words: bool = True
    numbered_words: int = 0  # PostgreSQL: words with a digit in them, each matched two ways
    plain_words: bool = True  # PostgreSQL: whether there are others


# Search terms are \w+ words (domain.catalog.search_terms), so no quote or operator of any dialect reaches SQL.
Search = tuple[ColumnElement[bool], ColumnElement[Any]]


class CatalogSearch(Protocol):
    def parameters(self, terms: list[str]) -> tuple[SearchShape, dict[str, Any]]:
        """The shape of the search statement these words need, and its parameters."""
        ...

    def match_and_rank(self, shape: SearchShape) -> Search:
        """The condition a product matching the words meets, and its relevance (higher first)."""
        ...


class IdSequences(Protocol):
    async def ids_given(self, conn: AsyncConnection, table: str) -> None:
        """Rows were inserted into `table` with explicit ids: the ids the database hands out next come after them."""
        ...


class PostsDialect(CatalogSearch, IdSequences, Protocol):
    pass


class PostgreSql:
    def parameters(self, terms: list[str]) -> tuple[SearchShape, dict[str, Any]]:
        numbered = [t for t in terms if any(c.isdigit() for c in t)]
        params: dict[str, Any] = {"search": " & ".join(f"{t}:*" for t in terms if t not in numbered)}
        for n, word in enumerate(numbered):  # \w+ words: no quote or operator can reach the tsquery syntax
            params[f"numbered_{n}"] = f"{word}:*"
            params[f"lexeme_{n}"] = f"'{word}':* | '-{word}':*"  # "T-0602" is indexed as T and the integer -0602
        return SearchShape(numbered_words=len(numbered), plain_words=len(numbered) < len(terms)), params

    def match_and_rank(self, shape: SearchShape) -> Search:
        # The text search parser reads a word with digits differently alone than inside the text it was indexed
        # from: "1e5a2b" alone is the number 1e5 and the word a2b, inside "T-1E5A2B" (a SKU) it is one lexeme. So
        # a word with a digit also matches as the literal lexeme it is (`'1e5a2b':*`, no parsing), whichever way
        # was indexed, or as the negative number a hyphen before digits makes of it.
        parts: list[ColumnElement[Any]] = ([func.to_tsquery("english", bindparam("search"))]
                                           if shape.plain_words else [])
        parts += [func.to_tsquery("english", bindparam(f"numbered_{n}")).op("||")(
            cast(bindparam(f"lexeme_{n}"), TSQUERY)) for n in range(shape.numbered_words)]
        tsquery = parts[0]
        for part in parts[1:]:
            tsquery = tsquery.op("&&")(part)
        vector: ColumnElement[Any] = literal_column("products.search_vector")
        return vector.op("@@")(tsquery), func.ts_rank_cd(vector, tsquery)

    async def ids_given(self, conn: AsyncConnection, table: str) -> None:
        # explicit ids do not move the serial sequence; `table` is one of ours, never input
        await conn.execute(text(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))  # noqa: S608


class MariaDb:
    def parameters(self, terms: list[str]) -> tuple[SearchShape, dict[str, Any]]:
        short = [t for t in terms if len(t) < 3]
        long = [t for t in terms if len(t) >= 3]
        params: dict[str, Any] = {f"short_{n}": "%" + t.replace("_", "\\_") + "%" for n, t in enumerate(short)}
        if long:
            params.update(search=" ".join(f"+{t}*" for t in long), words=" ".join(long))
        return SearchShape(short_words=len(short), long_words=bool(long)), params

    def match_and_rank(self, shape: SearchShape) -> Search:
        # InnoDB does not index words shorter than three letters; those are looked for in the title instead
        conditions: list[ColumnElement[bool]] = [products.c.title.like(bindparam(f"short_{n}"), escape="\\")
                                                 for n in range(shape.short_words)]
        rank: ColumnElement[Any] = literal_column("0")
        if shape.long_words:
            conditions.append(mysql_match(products.c.title, products.c.description,
                                          against=bindparam("search")).in_boolean_mode())
            # a word in the title counts more than one in the description, as on the other databases
            rank = mysql_match(products.c.title, against=bindparam("words")) * 3 + mysql_match(
                products.c.title, products.c.description, against=bindparam("words"))
        return and_(*conditions), rank

    async def ids_given(self, conn: AsyncConnection, table: str) -> None:
        pass  # AUTO_INCREMENT continues after the largest id


class Sqlite:
    def parameters(self, terms: list[str]) -> tuple[SearchShape, dict[str, Any]]:
        return _ANY_WORDS, {"search": " AND ".join(f'"{t}"*' for t in terms)}

    def match_and_rank(self, shape: SearchShape) -> Search:
        matching = text("products_fts MATCH :search")
        ids: Select[Any] = select(literal_column("rowid")).select_from(text("products_fts")).where(matching)
        rank = (select(literal_column("-bm25(products_fts, 10.0, 1.0)")).select_from(text("products_fts"))
                .where(matching, literal_column("products_fts.rowid") == products.c.id).scalar_subquery())
        return products.c.id.in_(ids), rank

    async def ids_given(self, conn: AsyncConnection, table: str) -> None:
        pass  # a new rowid is one more than the largest


_ANY_WORDS = SearchShape()  # SQLite's statement is the same whatever the words

_FAMILIES: dict[str, type[PostgreSql | MariaDb | Sqlite]] = {
    "postgresql": PostgreSql, "mysql": MariaDb, "mariadb": MariaDb, "sqlite": Sqlite}


def dialect_for(backend: str) -> PostsDialect:
    """The search and ids of the database family `backend` (a SQLAlchemy dialect name) belongs to."""
    return _FAMILIES[backend]()
