"""Core statements run straight on the driver's cursor, for the transactions of every certificate.

Issuing a certificate takes two short transactions (reserve, store) of three to six statements
each. Through SQLAlchemy's ``Connection`` a statement cost 50-100 µs of Python (cache key,
execution context, result object), and the two transactions 1.5-2 ms per certificate: a third
of an RSA-4096 signature on the HSM. :class:`DriverTransaction` keeps SQLAlchemy for what it is
good at and skips the rest:

- each Core statement is compiled once per dialect and parameter set by SQLAlchemy's own
  compiler (the SQL text is the one ``Connection.execute`` would send);
- parameters and result values go through the columns' own type processors (``UTCDateTime``
  and the rest behave as everywhere else);
- the statement runs on the DBAPI cursor of a connection from the engine's pool; on SQLite the
  transaction is a writer's (queued on the writer lock, ``BEGIN IMMEDIATE``), on PostgreSQL the
  driver's implicit one;
- driver errors come out as SQLAlchemy's (``IntegrityError`` …), and any error rolls back.

Only statements that are module-level constants belong here: compiled forms are kept per
statement object.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

from sqlalchemy import Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement, Select

from ra.db_sqlite import begin_write

Processor = Callable[[Any], Any] | None


class _Compiled:
    """One statement compiled for one dialect and one set of parameter names."""

    def __init__(self, statement: ClauseElement, dialect: Dialect, keys: Sequence[str]) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        if compiled.post_compile_params:
            raise ValueError("statements with expanding parameters (IN lists) do not run on the driver")
        self.statement = statement  # kept alive: the cache is keyed by its id
        self.sql = compiled.string
        self._construct = compiled.construct_params
        self._positions = compiled.positiontup if dialect.positional else None
        self._processors = {
            name: processor for name, bind in compiled.binds.items()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        columns = statement.selected_columns if isinstance(statement, Select) else \
            getattr(statement, "exported_columns", ())
        self.results: list[Processor] = [c.type.dialect_impl(dialect).result_processor(dialect, None)
                                         for c in columns]

    def parameters(self, values: Mapping[str, Any]) -> Any:
        params = self._construct(values)
        for name, processor in self._processors.items():
            if name in params:
                params[name] = processor(params[name])
        if self._positions is not None:
            return tuple(params[name] for name in self._positions)
        return params


class DriverResult:
    """The rows a statement returned, values converted by their columns' types."""

    def __init__(self, rows: list[tuple[Any, ...]], processors: list[Processor]) -> None:
        if any(processors):
            rows = [tuple(p(v) if p else v for p, v in zip(processors, row)) for row in rows]
        self._rows = rows

    def first(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def all(self) -> list[tuple[Any, ...]]:
        return list(self._rows)

    def scalar_one(self) -> Any:
        if len(self._rows) != 1:
            raise ValueError(f"one row expected, {len(self._rows)} returned")
        return self._rows[0][0]


class DriverTransaction:
    """``with DriverTransaction(engine) as tx: tx.execute(STATEMENT, {...})``: commit or roll back."""

    _cache: dict[tuple[int, str, str, tuple[str, ...]], _Compiled] = {}

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.dialect = engine.dialect

    def __enter__(self) -> DriverTransaction:
        self._pooled = self._engine.raw_connection()
        dbapi_connection = self._pooled.dbapi_connection
        try:
            if self.dialect.name == "sqlite":
                begin_write(dbapi_connection)
            self._cursor = dbapi_connection.cursor()
        except BaseException:
            self._pooled.close()
            raise
        return self

    def execute(self, statement: ClauseElement, values: Mapping[str, Any] | None = None) -> DriverResult:
        values = values or {}
        key = (id(statement), self.dialect.name, self.dialect.driver, tuple(values))
        compiled = self._cache.get(key)
        if compiled is None or compiled.statement is not statement:
            compiled = self._cache[key] = _Compiled(statement, self.dialect, tuple(values))
        parameters = compiled.parameters(values)
        cursor = self._cursor
        try:
            cursor.execute(compiled.sql, parameters)
            rows = cursor.fetchall() if cursor.description is not None else []
        except self.dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(compiled.sql, parameters, exc, self.dialect.loaded_dbapi.Error) from exc
        return DriverResult(rows, compiled.results)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        dbapi_connection = self._pooled.dbapi_connection
        try:
            self._cursor.close()
            if kind is None:
                try:
                    dbapi_connection.commit()
                except self.dialect.loaded_dbapi.Error as error:
                    raise DBAPIError.instance("COMMIT", None, error, self.dialect.loaded_dbapi.Error) from error
            else:
                dbapi_connection.rollback()
        except BaseException:
            self._pooled.invalidate()  # a connection whose COMMIT or ROLLBACK failed is not reused
            raise
        finally:
            self._pooled.close()
