"""SQLite writers queue on the lock file: one at a time, the next one as soon as the previous ends."""

from __future__ import annotations

import fcntl
import os
import sqlite3
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


def _bodies(engine) -> list[str]:
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(text("SELECT body FROM notes ORDER BY id"))]


def test_second_writer_waits_until_the_first_commits(engine, tmp_path):
    started, done = threading.Event(), threading.Event()

    def second_writer() -> None:
        started.set()
        _insert(engine, "second")
        done.set()

    with engine.begin() as conn:
        conn.execute(text("INSERT INTO notes (body) VALUES ('first')"))
        thread = threading.Thread(target=second_writer)
        thread.start()
        started.wait(5)
        assert not done.wait(0.2)  # queued behind the open write transaction
    assert done.wait(5)
    thread.join()
    assert _bodies(engine) == ["first", "second"]
    assert (tmp_path / "lock.db.lock").exists()


def test_rollback_releases_the_lock(engine):
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.execute(text("INSERT INTO notes (body) VALUES ('lost')"))
        raise RuntimeError("boom")
    _insert(engine, "kept")  # would wait LOCK_TIMEOUT_S if the lock were still held
    assert _bodies(engine) == ["kept"]


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


def test_writers_in_two_processes_are_serialised(tmp_path):
    """Two processes, each incrementing a counter 200 times in read-modify-write transactions."""
    url = f"sqlite:///{tmp_path / 'count.db'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE counter (n INTEGER)"))
        conn.execute(text("INSERT INTO counter VALUES (0)"))
    engine.dispose()
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_increment, args=(url, 200)) for _ in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    assert sqlite3.connect(tmp_path / "count.db").execute("SELECT n FROM counter").fetchone()[0] == 400


def _increment(url: str, times: int) -> None:
    engine = make_engine(url)
    for _ in range(times):
        with engine.begin() as conn:
            n = conn.execute(text("SELECT n FROM counter")).scalar_one()
            conn.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})
    engine.dispose()
