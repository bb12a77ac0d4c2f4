"""SQLite as the embedded database: WAL, foreign keys, and writers queued on a file lock.

SQLite lets one writer in at a time; a second ``BEGIN IMMEDIATE`` gets ``SQLITE_BUSY`` and its
busy handler sleeps 1, 2, 5, 10 … up to 100 ms between tries, so two gunicorn workers (or two
issuing processes) writing short transactions spend much of their time asleep. Writers here
first take an exclusive ``flock`` on ``<database>.lock``, polled every 50 µs to 1 ms, and hold
it until their COMMIT or ROLLBACK: the next writer starts as soon as the previous one ends.
Readers (``readonly`` transactions) take no lock; WAL lets them read while a writer writes.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError

LOCK_TIMEOUT_S = 30.0
_FIRST_POLL_S, _LONGEST_POLL_S = 0.00005, 0.001


class WriterQueuedConnection(sqlite3.Connection):
    """A DBAPI connection whose write transactions hold the database's writer lock."""

    lock_path: str | None = None
    _lock_fd: int | None = None
    _holding = False

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.release_writer_lock()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.release_writer_lock()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.release_writer_lock()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def acquire_writer_lock(self) -> None:
        """Wait for the writer lock (released by COMMIT or ROLLBACK); OperationalError after 30 s."""
        if self.lock_path is None or self._holding:
            return
        if self._lock_fd is None:
            self._lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline, pause = time.monotonic() + LOCK_TIMEOUT_S, _FIRST_POLL_S
        while True:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._holding = True
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise sqlite3.OperationalError("database is locked (writer lock held too long)") from None
                time.sleep(pause)
                pause = min(pause * 2, _LONGEST_POLL_S)

    def release_writer_lock(self) -> None:
        if self._holding and self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        self._holding = False


# ``timeout`` sets SQLite's busy timeout, for writers from outside guichet.
CONNECT_ARGS: dict[str, Any] = {"timeout": LOCK_TIMEOUT_S, "factory": WriterQueuedConnection}


def configure_sqlite(engine: Engine) -> None:
    """Pragmas on every new connection; writers queue on the lock file before BEGIN IMMEDIATE."""
    database = make_url(str(engine.url)).database
    lock_path = f"{database}.lock" if database and database != ":memory:" else None

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # let SQLAlchemy's events emit BEGIN
        dbapi_connection.lock_path = lock_path
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        # Writers lock up front; long read-only work (a CRL) must not block them.
        # BEGIN goes straight to the driver: a statement of SQLAlchemy's costs more than SQLite's.
        if conn.get_execution_options().get("readonly"):
            _begin(conn.connection.dbapi_connection, "BEGIN")
        else:
            begin_write(conn.connection.dbapi_connection)


def begin_write(dbapi_connection: WriterQueuedConnection) -> None:
    """Queue on the writer lock, then ``BEGIN IMMEDIATE`` (the lock is released if it fails)."""
    try:
        dbapi_connection.acquire_writer_lock()
    except sqlite3.OperationalError as exc:
        raise OperationalError("BEGIN IMMEDIATE", None, exc) from None
    try:
        _begin(dbapi_connection, "BEGIN IMMEDIATE")
    except BaseException:
        dbapi_connection.release_writer_lock()
        raise


def _begin(dbapi_connection: sqlite3.Connection, statement: str) -> None:
    try:
        dbapi_connection.execute(statement)
    except sqlite3.Error as exc:
        raise OperationalError(statement, None, exc) from None
