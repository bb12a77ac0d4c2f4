"""SQLite writers queue on the lock file: one at a time, the next one as soon as the previous ends."""

from __future__ import annotations

import fcntl
import os
import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

import ra.db_sqlite as db_sqlite
from ra.db import make_engine, make_session_factory, read_session, transaction


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'lock.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
    yield engine
    engine.dispose()


def _insert(engine, body: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO notes (body) VALUES (:b)"), {"b": body})


def _lock_is_free(tmp_path) -> bool:
    """Try the writer lock from another open file, as another process would."""
    fd = os.open(tmp_path / "lock.db.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def _bodies(engine) -> list[str]:
    with engine.connect().execution_options(readonly=True) as conn:  # a reader: no writer lock
        return [row[0] for row in conn.execute(text("SELECT body FROM notes ORDER BY id"))]


def test_second_writer_waits_until_the_first_commits(engine, tmp_path):
    started, done = threading.Event(), threading.Event()

    def second_writer() -> None:
        started.set()
        _insert(engine, "second")
        done.set()

    with engine.begin() as conn:
        conn.execute(text("INSERT INTO notes (body) VALUES ('first')"))
        assert not _lock_is_free(tmp_path)  # held from BEGIN …
        thread = threading.Thread(target=second_writer)
        thread.start()
        started.wait(5)
        assert not done.wait(0.2)  # queued behind the open write transaction
    assert done.wait(5)
    thread.join()
    assert _bodies(engine) == ["first", "second"]
    assert _lock_is_free(tmp_path)  # … to COMMIT


def test_rollback_releases_the_lock(engine, tmp_path):
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.execute(text("INSERT INTO notes (body) VALUES ('lost')"))
        raise RuntimeError("boom")
    assert _lock_is_free(tmp_path)
    assert _bodies(engine) == []


def test_readers_do_not_wait_for_a_writer(engine):
    factory = make_session_factory(engine)
    _insert(engine, "committed")
    with transaction(factory) as writer:
        writer.execute(text("INSERT INTO notes (body) VALUES ('pending')"))
        started = time.monotonic()
        with read_session(factory) as reader:
            seen = [row[0] for row in reader.execute(text("SELECT body FROM notes"))]
        assert time.monotonic() - started < 1
        assert seen == ["committed"]  # WAL: the reader sees the last committed state


def test_writer_lock_held_too_long_is_a_clear_error_and_changes_nothing(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(db_sqlite, "LOCK_TIMEOUT_S", 0.1)
    fd = os.open(tmp_path / "lock.db.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another process's writer, stuck
        with pytest.raises(OperationalError, match="database is locked"):
            _insert(engine, "never")
    finally:
        os.close(fd)
    assert _bodies(engine) == []
    _insert(engine, "after")
    assert _bodies(engine) == ["after"]


def test_a_writer_starts_as_soon_as_another_process_releases_the_lock(engine, tmp_path):
    fd = os.open(tmp_path / "lock.db.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another process's writer
    writer = threading.Thread(target=_insert, args=(engine, "queued"))
    writer.start()
    time.sleep(0.3)
    assert writer.is_alive() and _bodies(engine) == []  # waiting on the lock, not on SQLite
    released = time.monotonic()
    os.close(fd)
    writer.join(5)
    assert not writer.is_alive() and _bodies(engine) == ["queued"]
    assert time.monotonic() - released < 0.5
