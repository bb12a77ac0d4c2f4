"""What can stop the station, each with a French message and, when useful, what to do next.

Messages never carry a PIN: they are built from fixed text, server messages and serial numbers.
"""

from __future__ import annotations


class StationError(Exception):
    """Base of the station's errors: ``str(exc)`` says what happened, ``advice`` what to do."""

    def __init__(self, message: str, *, advice: str = "", uncertain: bool = False) -> None:
        super().__init__(message)
        self.advice = advice
        self.uncertain = uncertain  # a request may have reached the back-office and been processed


class StationNetworkError(StationError):
    """The back-office could not be reached, or the connection dropped before its answer."""


class ServerRefusal(StationError):
    """The back-office answered with an error (4xx/5xx) and said why."""

    def __init__(self, message: str, *, status: int, code: str, server_message: str, advice: str = "",
                 uncertain: bool = False) -> None:
        super().__init__(message, advice=advice, uncertain=uncertain)
        self.status = status
        self.code = code
        self.server_message = server_message


class TokenProblem(StationError):
    """The token is missing, refused a PIN, or holds something it should not."""


class TokenPulledOut(TokenProblem):
    """The token was removed (or its sessions closed) in the middle of an operation."""


class EnrolmentFailed(StationError):
    """An enrolment stopped at a numbered step; the token was cleaned up as far as possible."""

    def __init__(self, message: str, *, step: int, advice: str = "") -> None:
        super().__init__(message, advice=advice)
        self.step = step
