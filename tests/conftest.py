"""Shared fixtures: a private SoftHSM2 token directory for the test session, and fresh tokens.

SoftHSM reads SOFTHSM2_CONF once, when the library is first loaded, so it is set here, at
import, before anything loads it; tokens are then created in-process (``initialize_token``),
which the loaded library sees at once. Other test files use ``PKCS11_MODULE``, ``TestToken``,
the ``token_factory`` and ``token`` fixtures, and ``set_softhsm_token_flags``.
"""

from __future__ import annotations

import itertools
import os
import shutil
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ca.errors import ModuleNotLoadable
from ca.token import Token, find_softhsm_module, initialize_token

# The instance fixtures (pki, app, db_session, cipher, server…) for every test folder: one
# session-wide CA instance per database, however many folders use it.
pytest_plugins = ["tests.ra.instance_fixtures"]

SOFTHSM_DIR = Path(tempfile.mkdtemp(prefix="guichet-softhsm-"))
SOFTHSM_TOKEN_DIR = SOFTHSM_DIR / "tokens"
SOFTHSM_TOKEN_DIR.mkdir()
(SOFTHSM_DIR / "softhsm2.conf").write_text(
    f"directories.tokendir = {SOFTHSM_TOKEN_DIR}\nobjectstore.backend = file\nlog.level = ERROR\n"
)
os.environ["SOFTHSM2_CONF"] = str(SOFTHSM_DIR / "softhsm2.conf")

try:
    PKCS11_MODULE = find_softhsm_module()
    _MODULE_PROBLEM = ""
except ModuleNotLoadable as exc:  # reported by the fixtures, so tests without tokens still run
    PKCS11_MODULE = ""
    _MODULE_PROBLEM = str(exc)

USER_PIN = "4321-user"
SO_PIN = "8765-security-officer"
_token_numbers = itertools.count(1)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(SOFTHSM_DIR, ignore_errors=True)


@dataclass(frozen=True)
class TestToken:
    """A freshly initialised SoftHSM token and the PINs that open it."""

    __test__ = False  # not a test class, despite the name

    module: str
    label: str
    serial: str
    pin: str = field(repr=False)
    so_pin: str = field(repr=False)

    def open(self) -> Token:
        return Token.open(self.module, serial=self.serial)


@pytest.fixture(scope="session")
def pkcs11_module() -> str:
    """The SoftHSM2 module path; fails (never skips) when SoftHSM2 is missing."""
    if _MODULE_PROBLEM:
        pytest.fail(f"{_MODULE_PROBLEM} (Debian package: softhsm2)", pytrace=False)
    return PKCS11_MODULE


@pytest.fixture
def token_factory(pkcs11_module: str) -> Callable[[], TestToken]:
    """Call it to get a new initialised token with a unique label, user PIN and SO PIN set."""

    def make() -> TestToken:
        label = f"test-{os.getpid()}-{next(_token_numbers)}"
        created = initialize_token(pkcs11_module, label=label, so_pin=SO_PIN, user_pin=USER_PIN)
        return TestToken(pkcs11_module, label, created.serial, USER_PIN, SO_PIN)

    return make


@pytest.fixture
def token(token_factory: Callable[[], TestToken]) -> TestToken:
    return token_factory()


# --- SoftHSM internals, for states no PKCS#11 call can produce ------------------------------

_CKA_OS_TOKENSERIAL, _CKA_OS_TOKENFLAGS = 0x8000534A, 0x8000534B  # SoftHSM vendor attributes
_BOOLEAN, _ULONG, _BYTES = 1, 2, 3


def set_softhsm_token_flags(token: TestToken, flags: int) -> None:
    """OR ``flags`` (CKF_* bits) into the token flags SoftHSM keeps in its ``token.object`` file.

    SoftHSM 2.6 never blocks a PIN (a wrong PIN only sets CKF_USER_PIN_COUNT_LOW); this puts a
    token in the state a real token's firmware reaches, e.g. CKF_USER_PIN_LOCKED. The file is a
    generation number then (type, kind, value) records, big-endian 64-bit integers; bumping the
    generation makes the loaded library read it again.
    """
    for path in SOFTHSM_TOKEN_DIR.glob("*/token.object"):
        data = bytearray(path.read_bytes())
        records: dict[int, tuple[int, int]] = {}  # attribute type -> (value offset, value length)
        pos = 8
        while pos < len(data):
            attribute, kind = struct.unpack_from(">QQ", data, pos)
            pos += 16
            if kind == _BOOLEAN:
                size = 1
            elif kind == _ULONG:
                size = 8
            elif kind == _BYTES:
                (size,) = struct.unpack_from(">Q", data, pos)
                pos += 8
            else:
                raise AssertionError(f"unexpected attribute kind {kind} in {path}")
            records[attribute] = (pos, size)
            pos += size
        start, size = records[_CKA_OS_TOKENSERIAL]
        if bytes(data[start:start + size]).decode().strip() != token.serial:
            continue
        start, _ = records[_CKA_OS_TOKENFLAGS]
        (current,) = struct.unpack_from(">Q", data, start)
        struct.pack_into(">Q", data, start, current | flags)
        (generation,) = struct.unpack_from(">Q", data, 0)
        struct.pack_into(">Q", data, 0, generation + 1)
        path.write_bytes(bytes(data))
        return
    raise AssertionError(f"no SoftHSM token with serial {token.serial} in {SOFTHSM_TOKEN_DIR}")
