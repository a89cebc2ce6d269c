"""Which database errors mean the connection (or the server) went away, rather than the statement was refused.

Those are answered 503 with Retry-After (the store is unavailable; nothing a retry cannot fix), and the connection
they came from is thrown away, never handed out again: a connection cut mid-statement can be left halfway through
the driver's protocol ("cannot switch to state 12; another operation is in progress").
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

# PostgreSQL: class 08 (connection exception), and the server shutting down or starting up
_PG_GONE = {"57P01", "57P02", "57P03"}
# MariaDB client and server codes: can't connect, server has gone away, lost connection, connection killed,
# server shutting down, disconnected for inactivity
_MYSQL_GONE = {2002, 2003, 2006, 2013, 2055, 1053, 1927, 4031}
# raised by the drivers themselves about a connection that is closed or in an unusable state (asyncpg's
# InterfaceError also reports misuse, e.g. a wrong number of arguments: only its words about the connection count)
_CLIENT_SIDE = {"asyncpg.exceptions._base.InterfaceError", "asyncpg.exceptions._base.InternalClientError"}
_CLIENT_SIDE_WORDS = ("connection", "another operation is in progress", "closed")


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 6:
        seen.append(current)
        current = getattr(current, "orig", None) or current.__cause__
    return seen


def connection_lost(exc: BaseException) -> bool:
    """Whether `exc` says the connection or the server went away (wrapped by SQLAlchemy or straight from the
    driver)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    for cause in _causes(exc):
        # a socket error under SQLAlchemy's, or a network error on its own (not a file's error in the block)
        network = (OSError, EOFError) if cause is not exc else (ConnectionError, EOFError)
        if isinstance(cause, network):
            return True
        kind = type(cause)
        if any(f"{k.__module__}.{k.__qualname__}" in _CLIENT_SIDE for k in kind.__mro__) and \
                any(word in str(cause).lower() for word in _CLIENT_SIDE_WORDS):
            return True
        sqlstate = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
        if isinstance(sqlstate, str) and (sqlstate.startswith("08") or sqlstate in _PG_GONE):
            return True
        args = getattr(cause, "args", ())
        if args and isinstance(args[0], int) and args[0] in _MYSQL_GONE:
            return True
    return False
