"""The running instance: settings, database and CA runtime, shared by the app and the CLI."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from flask import current_app
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from ra.authority import CertificationAuthority
from ra.config import Settings, load_settings
from ra.db import make_engine, make_session_factory
from ra.documents.vault import DocumentVault


@dataclass
class Instance:
    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    ca: CertificationAuthority

    @classmethod
    def open(cls, settings: Settings | None = None) -> Instance:
        settings = settings or load_settings()
        engine = make_engine(settings.database_url)
        return cls(settings, engine, make_session_factory(engine), CertificationAuthority(settings))

    @functools.cached_property
    def vault(self) -> DocumentVault:
        """The encrypted document store of this instance (its folder made and its key derived once)."""
        return DocumentVault(self.settings.documents_dir, self.settings.secret_key)

    def close(self) -> None:
        self.ca.close()
        self.engine.dispose()


def current_instance() -> Instance:
    return current_app.extensions["guichet"]
