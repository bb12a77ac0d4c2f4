"""Pagination of a SQLAlchemy select, for the screens' tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import request, url_for
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

PER_PAGE = 25


@dataclass(frozen=True)
class Page:
    items: list[Any]
    number: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    def url(self, number: int) -> str:
        args = {**request.args.to_dict(), "page": number}
        return url_for(request.endpoint or "", **(request.view_args or {}), **args)


def paginate(session: Session, stmt: Select[Any], *, per_page: int = PER_PAGE) -> Page:
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    last = max(1, -(-total // per_page))
    try:
        number = min(max(1, int(request.args.get("page", "1"))), last)
    except ValueError:
        number = 1
    items = list(session.scalars(stmt.limit(per_page).offset((number - 1) * per_page)))
    return Page(items, number, per_page, total)
