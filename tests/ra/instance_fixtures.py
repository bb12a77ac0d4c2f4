"""Instance fixtures, registered for every test folder by tests/conftest.py: real databases (SQLite file, PostgreSQL throwaway database) and a real CA
instance created by the same ceremony as ``guichet init`` on SoftHSM tokens."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ra.config import load_settings
from ra.instance import Instance

PG_URL = os.environ.get("GUICHET_TEST_DATABASE_URL")
BACKENDS = ["sqlite", "postgresql"]
FAST_CEREMONY = Path(__file__).with_name("ceremony-test.toml")

os.environ.setdefault("GUICHET_ROOT_PIN", "11223344")
os.environ.setdefault("GUICHET_ROOT_SO_PIN", "55667788")
os.environ.setdefault("GUICHET_CA_PIN", "12348765")
os.environ.setdefault("GUICHET_CA_SO_PIN", "87654321")


def _skip_without_postgres(backend: str) -> None:
    if backend == "postgresql" and not PG_URL:
        pytest.skip("GUICHET_TEST_DATABASE_URL is not set (CI sets it): PostgreSQL not tested here")


def _create_pg_database() -> str:
    assert PG_URL
    name = f"guichet_test_{secrets.token_hex(6)}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def _drop_pg_database(url: str) -> None:
    assert PG_URL
    name = make_url(url).database
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def make_database_url(backend: str, directory: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{directory / 'guichet.db'}"
    return _create_pg_database()


def drop_database(url: str) -> None:
    if url.startswith("postgresql"):
        _drop_pg_database(url)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each backend, dropped after the test."""
    _skip_without_postgres(request.param)
    url = make_database_url(request.param, tmp_path)
    yield url
    drop_database(url)


def build_instance(directory: Path, database_url: str, *, ceremony: Path | None) -> Instance:
    from ra.services.setup import initialise

    tag = secrets.token_hex(4)
    settings = load_settings(
        instance=directory, database_url=database_url, root_token_label=f"root-{tag}",
        ca_token_label=f"ca-{tag}", public_url="http://pki.example.fr",
    )
    instance = Instance.open(settings)
    initialise(instance, plan_path=ceremony)
    return instance


@pytest.fixture(scope="session", params=BACKENDS)
def pki(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    """An initialised instance (root + issuing CA on SoftHSM), shared by a test session."""
    _skip_without_postgres(request.param)
    directory = tmp_path_factory.mktemp(f"instance-{request.param}")
    url = make_database_url(request.param, directory)
    instance = build_instance(directory, url, ceremony=FAST_CEREMONY)
    yield instance
    instance.close()
    drop_database(url)


@pytest.fixture
def app(pki: Instance):  # type: ignore[no-untyped-def]
    """The back-office on the shared instance (CSRF on, as in production)."""
    from ra import create_app

    application = create_app(pki.settings)
    application.config["TESTING"] = True
    yield application
    application.extensions["guichet"].close()


@pytest.fixture
def browser(app):  # type: ignore[no-untyped-def]
    from tests.ra.web import Browser

    return Browser(app)


@pytest.fixture
def db_session(pki: Instance):  # type: ignore[no-untyped-def]
    """A database session on the shared instance; committed objects stay for the session."""
    with pki.factory() as s:
        yield s


@pytest.fixture
def cipher(pki: Instance):  # type: ignore[no-untyped-def]
    from ra.fieldcrypt import FieldCipher

    return FieldCipher(pki.settings.secret_key)


@pytest.fixture
def server(pki: Instance) -> Iterator[str]:
    """The back-office on a real HTTP server (127.0.0.1, ephemeral port), in a thread."""
    import threading

    from werkzeug.serving import make_server

    from ra import create_app

    application = create_app(pki.settings)
    httpd = make_server("127.0.0.1", 0, application, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    application.extensions["guichet"].close()
