"""Which database errors mean the connection went away (503, connection thrown away) and which do not."""

from __future__ import annotations

import asyncmy.errors
import asyncpg.exceptions
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from shop.infrastructure.db.failures import connection_lost


def wrapped(orig: BaseException, *, invalidated: bool = False) -> DBAPIError:
    return DBAPIError.instance("SELECT 1", {}, orig, Exception, connection_invalidated=invalidated)  # type: ignore[arg-type]


@pytest.mark.parametrize("error", [
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.exceptions.InterfaceError("cannot perform operation: another operation is in progress"),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"),
    wrapped(ConnectionRefusedError(111, "Connection refused")),
    wrapped(asyncmy.errors.OperationalError(2013, "Lost connection to server during query")),
    wrapped(asyncmy.errors.OperationalError(1927, "Connection was killed")),
    OperationalError("SELECT 1", {}, Exception("anything"), connection_invalidated=True),
    ConnectionResetError(104, "Connection reset by peer"),
], ids=lambda e: type(e).__name__)
def test_a_connection_that_went_away_is_recognised(error: BaseException) -> None:
    assert connection_lost(error)


@pytest.mark.parametrize("error", [
    asyncpg.exceptions.InterfaceError("the server expects 2 arguments for this query, 1 was passed"),
    asyncpg.exceptions.UniqueViolationError("duplicate key value violates unique constraint"),
    asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
    IntegrityError("INSERT", {}, Exception("duplicate")),
    wrapped(asyncmy.errors.OperationalError(1213, "Deadlock found when trying to get lock")),
    FileNotFoundError(2, "No such file or directory"),
    ValueError("a domain rule said no"),
], ids=lambda e: type(e).__name__)
def test_a_refused_statement_or_another_error_is_not_a_lost_connection(error: BaseException) -> None:
    assert not connection_lost(error)
