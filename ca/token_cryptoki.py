"""Where python-pkcs11 and the PKCS#11 module meet the project.

- :func:`load_module`: one loaded module per path and process (python-pkcs11 and SoftHSM are
  per-process singletons; SoftHSM reads SOFTHSM2_CONF once, when first loaded). python-pkcs11
  calls ``C_Initialize(NULL)``, which tells the module that no two threads will call it at
  once: SoftHSM then turns its mutexes off and crashes (SIGSEGV) under concurrent sessions,
  because python-pkcs11 releases the GIL. So the module is re-initialised at once with
  CKF_OS_LOCKING_OK, before any session exists.
- :func:`pkcs11_errors`: the one place where library errors become ``ca.errors``.
- :func:`raw_calls`: C_InitToken and C_Login through the module's own function list (ctypes).
  python-pkcs11 has no C_InitToken, and its login (inside ``Token.open``) leaks the session
  when the PIN is wrong and refuses a second logged-in session (CKR_USER_ALREADY_LOGGED_IN),
  which one session per thread needs.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pkcs11
from pkcs11 import exceptions as p11x

from ca import errors

if TYPE_CHECKING:
    from pkcs11._pkcs11 import lib as Pkcs11Library

CKU_SO, CKU_USER = 0, 1
SOFTHSM_PATHS = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
_CKF_OS_LOCKING_OK = 0x02
_CKR_CANT_LOCK = 0x0A
_CKR_USER_ALREADY_LOGGED_IN = 0x100

# --- library errors -> ca.errors ------------------------------------------------------------

_TRANSLATION: tuple[tuple[tuple[type[p11x.PKCS11Error], ...], type[errors.TokenError], str], ...] = (
    ((p11x.PinIncorrect,), errors.PinIncorrect, "the PIN is incorrect"),
    ((p11x.PinLocked,), errors.PinLocked, "the PIN is locked"),
    (
        (p11x.PinLenRange, p11x.PinInvalid, p11x.PinTooWeak),
        errors.PinPolicyError,
        "the PIN does not meet the token's policy",
    ),
    ((p11x.NoSuchToken, p11x.MultipleTokensReturned), errors.TokenNotFound, "no single token matches"),
    (
        (
            p11x.TokenNotPresent,
            p11x.DeviceRemoved,
            p11x.SessionClosed,
            p11x.SessionHandleInvalid,
            p11x.TokenNotRecognised,
        ),
        errors.TokenRemoved,
        "the token was removed or the session is closed",
    ),
    (
        (p11x.MechanismInvalid, p11x.KeyTypeInconsistent, p11x.FunctionNotSupported),
        errors.MechanismUnsupported,
        "the token does not offer this mechanism or key type",
    ),
)

# CK_RV values the raw calls may return, as the python-pkcs11 exception pkcs11_errors knows.
_LIBRARY_ERRORS_BY_RV: dict[int, type[p11x.PKCS11Error]] = {
    0x03: p11x.SlotIDInvalid, 0x05: p11x.GeneralError, 0x07: p11x.ArgumentsBad,
    0x30: p11x.DeviceError, 0x32: p11x.DeviceRemoved, 0x54: p11x.FunctionNotSupported,
    0xA0: p11x.PinIncorrect, 0xA1: p11x.PinInvalid, 0xA2: p11x.PinLenRange, 0xA4: p11x.PinLocked,
    0xB0: p11x.SessionClosed, 0xB3: p11x.SessionHandleInvalid, 0xB6: p11x.SessionExists,
    0xB7: p11x.SessionReadOnlyExists, 0xE0: p11x.TokenNotPresent, 0xE1: p11x.TokenNotRecognised,
    0xE2: p11x.TokenWriteProtected, 0x102: p11x.UserPinNotInitialized,
    0x104: p11x.AnotherUserAlreadyLoggedIn,
}


def translate_error(exc: p11x.PKCS11Error, action: str) -> errors.TokenError:
    """The ``ca.errors`` exception for a python-pkcs11 exception (messages never carry a PIN)."""
    for library_types, ours, meaning in _TRANSLATION:
        if isinstance(exc, library_types):
            return ours(f"{action}: {meaning} ({type(exc).__name__})")
    detail = f": {exc}" if str(exc) else ""
    return errors.TokenError(f"{action}: {type(exc).__name__}{detail}")


@contextmanager
def pkcs11_errors(action: str) -> Iterator[None]:
    """Wrap python-pkcs11 errors raised inside as ``ca.errors.TokenError``; ``action`` says what failed."""
    try:
        yield
    except p11x.PKCS11Error as exc:
        raise translate_error(exc, action) from exc


def _check_rv(rv: int, function: str) -> None:
    """Raise the python-pkcs11 exception for a CK_RV, for pkcs11_errors to translate."""
    if rv:
        raise _LIBRARY_ERRORS_BY_RV.get(rv, p11x.PKCS11Error)(f"{function} returned CKR 0x{rv:08X}")


# --- the raw calls --------------------------------------------------------------------------

class _FunctionList(ctypes.Structure):
    """The head of CK_FUNCTION_LIST, up to C_Login (order fixed by PKCS#11 2.x)."""

    _fields_ = [("major", ctypes.c_ubyte), ("minor", ctypes.c_ubyte)] + [
        (name, ctypes.c_void_p)
        for name in (
            "C_Initialize", "C_Finalize", "C_GetInfo", "C_GetFunctionList", "C_GetSlotList",
            "C_GetSlotInfo", "C_GetTokenInfo", "C_GetMechanismList", "C_GetMechanismInfo",
            "C_InitToken", "C_InitPIN", "C_SetPIN", "C_OpenSession", "C_CloseSession",
            "C_CloseAllSessions", "C_GetSessionInfo", "C_GetOperationState",
            "C_SetOperationState", "C_Login",
        )
    ]


class _InitializeArgs(ctypes.Structure):
    """CK_C_INITIALIZE_ARGS."""

    _fields_ = [
        ("CreateMutex", ctypes.c_void_p), ("DestroyMutex", ctypes.c_void_p),
        ("LockMutex", ctypes.c_void_p), ("UnlockMutex", ctypes.c_void_p),
        ("flags", ctypes.c_ulong), ("pReserved", ctypes.c_void_p),
    ]


_ULONG, _TEXT = ctypes.c_ulong, ctypes.c_char_p


class _RawCalls:
    """C_Initialize/C_Finalize, C_InitToken and C_Login of the module python-pkcs11 loaded."""

    def __init__(self, path: str) -> None:
        self._dll = ctypes.CDLL(path)  # the same handle as python-pkcs11's: dlopen counts references
        get_list = self._dll.C_GetFunctionList
        get_list.argtypes = [ctypes.POINTER(ctypes.POINTER(_FunctionList))]
        get_list.restype = _ULONG
        head = ctypes.POINTER(_FunctionList)()
        _check_rv(get_list(ctypes.byref(head)), "C_GetFunctionList")
        functions = head.contents
        self._initialize = ctypes.CFUNCTYPE(_ULONG, ctypes.c_void_p)(functions.C_Initialize)
        self._finalize = ctypes.CFUNCTYPE(_ULONG, ctypes.c_void_p)(functions.C_Finalize)
        self._init_token = ctypes.CFUNCTYPE(_ULONG, _ULONG, _TEXT, _ULONG, _TEXT)(functions.C_InitToken)
        self._login = ctypes.CFUNCTYPE(_ULONG, _ULONG, _ULONG, _TEXT, _ULONG)(functions.C_Login)

    def reinitialize_for_threads(self, path: str) -> None:
        """C_Finalize, then C_Initialize with CKF_OS_LOCKING_OK; only while no session exists."""
        _check_rv(self._finalize(None), "C_Finalize")
        args = _InitializeArgs(flags=_CKF_OS_LOCKING_OK)
        rv = self._initialize(ctypes.byref(args))
        if rv == _CKR_CANT_LOCK:
            _check_rv(self._initialize(None), "C_Initialize")
            raise errors.ModuleNotLoadable(f"the PKCS#11 module {path} cannot be used from several threads")
        _check_rv(rv, "C_Initialize")

    def init_token(self, slot_id: int, so_pin: str, label: bytes) -> None:
        pin = so_pin.encode("utf-8")
        _check_rv(self._init_token(slot_id, pin, len(pin), label.ljust(32, b" ")), "C_InitToken")

    def login(self, session_handle: int, user_type: int, pin: str) -> None:
        data = pin.encode("utf-8")
        rv = self._login(session_handle, user_type, data, len(data))
        if rv != _CKR_USER_ALREADY_LOGGED_IN:  # another session of this process logged in
            _check_rv(rv, "C_Login")


# --- loading --------------------------------------------------------------------------------

_modules: dict[str, tuple[Pkcs11Library, _RawCalls]] = {}
_modules_lock = threading.Lock()


def find_softhsm_module() -> str:
    """The PKCS#11 module to use: $GUICHET_PKCS11_MODULE, else SoftHSM2 where Debian puts it."""
    configured = os.environ.get("GUICHET_PKCS11_MODULE")
    if configured:
        return configured
    for path in SOFTHSM_PATHS:
        if os.path.isfile(path):
            return path
    raise errors.ModuleNotLoadable(
        "SoftHSM2 is not installed (looked in " + ", ".join(SOFTHSM_PATHS)
        + "): install the Debian package softhsm2 or set GUICHET_PKCS11_MODULE"
    )


def _load(path: str) -> tuple[Pkcs11Library, _RawCalls]:
    with _modules_lock:
        if path not in _modules:
            try:
                library = pkcs11.lib(path)
            except p11x.PKCS11Error as exc:
                raise errors.ModuleNotLoadable(f"cannot load the PKCS#11 module {path}: {exc}") from exc
            with pkcs11_errors(f"initialising the PKCS#11 module {path} for threads"):
                raw = _RawCalls(path)
                raw.reinitialize_for_threads(path)
            _modules[path] = (library, raw)
        return _modules[path]


def load_module(path: str) -> Pkcs11Library:
    """The PKCS#11 module at ``path``, loaded and initialised for threads once per process.

    Load it through here only: a session opened by another loader would not survive.
    """
    return _load(path)[0]


def raw_calls(path: str) -> _RawCalls:
    """C_InitToken and C_Login of the module at ``path``."""
    return _load(path)[1]
