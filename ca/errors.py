"""The signing core's exception tree: one base, a few flat families."""

from __future__ import annotations


class CAError(Exception):
    """Base of every error raised by the signing core."""


# --- token (PKCS#11) ------------------------------------------------------------------------

class TokenError(CAError):
    """A PKCS#11 module, slot, token or object could not be used."""


class ModuleNotLoadable(TokenError):
    """The PKCS#11 module file cannot be loaded."""


class TokenNotFound(TokenError):
    """No token (or more than one) matches the label or serial asked for."""


class TokenRemoved(TokenError):
    """The token was pulled out or its session closed while in use."""


class PinIncorrect(TokenError):
    """The PIN given is wrong."""


class PinLocked(TokenError):
    """Too many wrong PINs: the PIN is blocked."""


class PinPolicyError(TokenError):
    """The PIN does not meet the token's or the project's policy."""


class KeyNotFound(TokenError):
    """No object matches the label/ID asked for."""


class AmbiguousKey(TokenError):
    """More than one object matches the label/ID asked for."""


class MechanismUnsupported(TokenError):
    """The token does not offer the mechanism or key type needed."""


# --- requests, profiles, lint, signing ------------------------------------------------------

class RequestError(CAError):
    """A certificate request (CSR or subject data) is malformed or refused by the profile."""


class LintError(CAError):
    """The to-be-signed certificate or CRL failed lint; ``findings`` lists why."""

    def __init__(self, message: str, findings: list[str]) -> None:
        super().__init__(message + ": " + "; ".join(findings))
        self.findings = findings


class SigningError(CAError):
    """The HSM signature failed or does not match what was linted."""


class CRLError(CAError):
    """A CRL cannot be built from the entries or parameters given."""
