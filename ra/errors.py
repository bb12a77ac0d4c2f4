"""The RA's exception tree. Every error carries a one-sentence message fit for a user."""

from __future__ import annotations


class RAError(Exception):
    """Base of the RA's own errors."""

    http_status = 400
    code = "bad_request"


class NotFound(RAError):
    http_status = 404
    code = "not_found"


class IllegalTransition(RAError):
    """The object is not in a state that allows this action."""

    http_status = 409
    code = "illegal_transition"


class Forbidden(RAError):
    http_status = 403
    code = "forbidden"


class InvalidInput(RAError):
    http_status = 400
    code = "invalid_input"
