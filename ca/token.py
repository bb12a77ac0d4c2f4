"""PKCS#11 tokens: load a module, initialise and open tokens, create and find keys.

SoftHSM2 stands for the CA's HSM and for the holders' USB tokens in development and tests; a
real device is a change of module path and token label. Keys found here are handed out as
``cryptography`` private keys (:mod:`ca.token_keys`), so the ordinary builders sign with them.
Library errors become ``ca.errors`` in :func:`ca.token_cryptoki.pkcs11_errors` only.

Login state belongs to the process and the token (PKCS#11): a second session of the same
process shares it, and it ends when the process closes its last session on that token.

PINs are only ever passed through: never stored, logged, or put in a message or repr.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Literal

import pkcs11
from asn1crypto.core import Integer
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pkcs11 import Attribute, CertificateType, KeyType, MechanismFlag, ObjectClass, TokenFlag
from pkcs11 import exceptions as p11x
from pkcs11.util.ec import encode_named_curve_parameters

from ca import errors
from ca.token_cryptoki import (
    CKU_SO,
    CKU_USER,
    find_softhsm_module,
    load_module,
    pkcs11_errors,
    raw_calls,
)
from ca.token_keys import (
    PKCS11ECPrivateKey,
    PKCS11RSAPrivateKey,
    TokenPrivateKey,
    read_public_key,
    wrap_private_key,
)

__all__ = [
    "KeySpec", "PKCS11ECPrivateKey", "PKCS11RSAPrivateKey", "Token", "TokenObject",
    "TokenSession", "find_softhsm_module", "initialize_token", "list_tokens", "load_module",
    "TokenPrivateKey", "pkcs11_errors",
]


Role = Literal["public", "user", "so"]  # who a session is logged in as


@dataclass(frozen=True)
class KeySpec:
    """A key algorithm and size: ``rsa-2048|3072|4096``, ``ec-p256|p384``."""

    kind: Literal["rsa", "ec"]
    size: int  # RSA modulus bits, or EC curve bits

    def __post_init__(self) -> None:
        allowed = {"rsa": (2048, 3072, 4096), "ec": (256, 384)}
        if self.size not in allowed.get(self.kind, ()):
            raise ValueError(f"Unsupported key {self.kind}-{self.size}: use rsa-2048/3072/4096 or ec-p256/p384.")

    @classmethod
    def parse(cls, text: str) -> KeySpec:
        kind, _, size = text.strip().lower().partition("-")
        if kind == "ec" and size.startswith("p"):
            size = size[1:]
        if kind not in ("rsa", "ec") or not size.isdigit():
            raise ValueError(f"Unknown key spec {text!r}: use rsa-2048/3072/4096 or ec-p256/p384.")
        return cls(kind, int(size))  # type: ignore[arg-type]

    @property
    def curve_name(self) -> str:
        return {256: "secp256r1", 384: "secp384r1"}[self.size]

    def __str__(self) -> str:
        return f"rsa-{self.size}" if self.kind == "rsa" else f"ec-p{self.size}"


@dataclass(frozen=True)
class TokenObject:
    """One object on a token, as listed by :meth:`TokenSession.objects`."""

    object_class: str  # "private_key", "public_key", "certificate", "data", ...
    key_type: str | None  # "rsa", "ec"; None for certificates and data
    label: str
    id_hex: str


def _check_label(label: str) -> bytes:
    encoded = label.encode("utf-8")
    if not 1 <= len(encoded) <= 32 or label.strip() != label:
        raise ValueError("A token label must be 1 to 32 bytes of UTF-8 without surrounding spaces.")
    return encoded


def initialize_token(
    module_path: str, *, label: str, so_pin: str, user_pin: str | None = None, serial: str | None = None
) -> Token:
    """Initialise a token (C_InitToken) and, if given, set its user PIN.

    Without ``serial``: the first free slot (a token without CKF_TOKEN_INITIALIZED). With it: that
    token, wiped; ``so_pin`` must then be its current SO PIN (a blank USB token's factory one).
    No session of this process may be open on it.
    """
    encoded_label = _check_label(label)
    if not so_pin:
        raise errors.PinPolicyError("the SO PIN is empty")
    library = load_module(module_path)
    with pkcs11_errors(f"listing the slots of {module_path}"):
        present = [(slot, slot.get_token()) for slot in library.get_slots(token_present=True)]
    if serial is None:
        targets = [slot for slot, tok in present if not tok.flags & TokenFlag.TOKEN_INITIALIZED]
        if not targets:
            raise errors.TokenNotFound(f"no free slot in {module_path} to initialise token {label!r}")
    else:
        targets = [slot for slot, tok in present if tok.serial.decode("ascii", "replace") == serial]
        if len(targets) != 1:
            raise errors.TokenNotFound(f"{len(targets)} tokens with serial {serial!r} in {module_path}")
    target = targets[0]
    for slot, tok in present:
        if tok.label == label and slot.slot_id != target.slot_id:
            raise errors.TokenError(f"a token labelled {label!r} already exists in {module_path}")
    with pkcs11_errors(f"initialising token {label!r}"):
        raw_calls(module_path).init_token(target.slot_id, so_pin, encoded_label)
    token = Token.open(module_path, label=label)
    if user_pin is not None:
        with token.session(so_pin=so_pin) as session:
            session.init_user_pin(user_pin)
    return token


class Token:
    """One token in one slot of a loaded module; build it with :meth:`open`."""

    def __init__(self, module_path: str, p11_token: pkcs11.Token) -> None:
        self.module_path = module_path
        self._p11 = p11_token

    @classmethod
    def open(cls, module_path: str, *, label: str | None = None, serial: str | None = None) -> Token:
        """The one token with this label and/or serial, else TokenNotFound."""
        if label is None and serial is None:
            raise ValueError("Give a token label, a serial or both.")
        wanted = " and ".join(f"{name} {value!r}" for name, value in (("label", label), ("serial", serial))
                           if value is not None)
        library = load_module(module_path)
        with pkcs11_errors(f"looking for the token with {wanted}"):
            found = list(library.get_tokens(token_label=label, token_serial=serial.encode() if serial else None))
        if len(found) != 1:
            raise errors.TokenNotFound(f"{len(found) or 'no'} token(s) with {wanted} in {module_path}")
        return cls(module_path, found[0])

    @classmethod
    def list_tokens(cls, module_path: str, *, include_blank: bool = False) -> list[Token]:
        """The tokens present, initialised ones only unless ``include_blank``."""
        library = load_module(module_path)
        with pkcs11_errors(f"listing the tokens of {module_path}"):
            tokens = [slot.get_token() for slot in library.get_slots(token_present=True)]
        return [
            cls(module_path, tok) for tok in tokens if include_blank or tok.flags & TokenFlag.TOKEN_INITIALIZED
        ]

    @property
    def label(self) -> str:
        return str(self._p11.label)

    @property
    def serial(self) -> str:
        return bytes(self._p11.serial).decode("ascii", "replace")

    @property
    def model(self) -> str:
        return str(self._p11.model)

    @property
    def manufacturer(self) -> str:
        return str(self._p11.manufacturer_id)

    @property
    def flags(self) -> TokenFlag:
        """The token's flags now (read again on every call: PIN counters change)."""
        with pkcs11_errors(f"reading the state of {self}"):
            return TokenFlag(self._p11.slot.get_token().flags)

    def _has(self, flag: TokenFlag) -> bool:
        return bool(self.flags & flag)

    @property
    def initialized(self) -> bool:
        return self._has(TokenFlag.TOKEN_INITIALIZED)

    @property
    def user_pin_initialized(self) -> bool:
        return self._has(TokenFlag.USER_PIN_INITIALIZED)

    @property
    def user_pin_count_low(self) -> bool:
        return self._has(TokenFlag.USER_PIN_COUNT_LOW)

    @property
    def user_pin_final_try(self) -> bool:
        return self._has(TokenFlag.USER_PIN_FINAL_TRY)

    @property
    def user_pin_locked(self) -> bool:
        return self._has(TokenFlag.USER_PIN_LOCKED)

    @property
    def so_pin_locked(self) -> bool:
        return self._has(TokenFlag.SO_PIN_LOCKED)

    @contextmanager
    def session(
        self, *, user_pin: str | None = None, so_pin: str | None = None, rw: bool = True
    ) -> Iterator[TokenSession]:
        """A session, logged in as user or SO if a PIN is given; closed on exit.

        A PIN the token reports locked is refused before any login attempt.
        """
        if user_pin is not None and so_pin is not None:
            raise ValueError("Give a user PIN or an SO PIN, not both.")
        role: Role = (
            "user" if user_pin is not None else "so" if so_pin is not None else "public"
        )
        if role == "user" and self.user_pin_locked:
            raise errors.PinLocked(f"the user PIN of {self} is locked: the SO must reset it")
        if role == "so" and self.so_pin_locked:
            raise errors.PinLocked(f"the SO PIN of {self} is locked")
        with pkcs11_errors(f"opening a session on {self}"):
            p11_session = self._p11.open(rw=rw)
        try:
            if role != "public":
                with pkcs11_errors(f"logging in to {self}"):
                    raw_calls(self.module_path).login(
                        p11_session.handle, CKU_USER if role == "user" else CKU_SO, user_pin or so_pin or ""
                    )
            yield TokenSession(self, p11_session, role)
        except BaseException:
            with suppress(p11x.PKCS11Error):
                p11_session.close()
            raise
        with pkcs11_errors(f"closing the session on {self}"):
            p11_session.close()

    def __str__(self) -> str:
        return f"token {self.label!r} (serial {self.serial})"

    def __repr__(self) -> str:
        return f"<Token label={self.label!r} serial={self.serial!r} module={self.module_path!r}>"


list_tokens = Token.list_tokens


def _describe(label: str | None, key_id: bytes | None) -> str:
    parts = [f"label {label!r}"] if label is not None else []
    parts += [f"ID {key_id.hex()}"] if key_id is not None else []
    return " and ".join(parts)


class TokenSession:
    """An open session on a token; every C call goes through one lock (see :mod:`ca.token_keys`)."""

    def __init__(self, token: Token, p11_session: pkcs11.Session, role: Role) -> None:
        self.token = token
        self.role = role
        self._session = p11_session
        self._lock = threading.RLock()

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        with self._lock, pkcs11_errors(f"{action} on {self.token}"):
            yield

    def _find(self, object_class: ObjectClass | None, label: str | None, key_id: bytes | None) -> list[Any]:
        template: dict[Attribute, Any] = {}
        if object_class is not None:
            template[Attribute.CLASS] = object_class
        if label is not None:
            template[Attribute.LABEL] = label
        if key_id is not None:
            template[Attribute.ID] = key_id
        with self._guard("searching objects"):
            return list(self._session.get_objects(template))

    def _one(self, object_class: ObjectClass, label: str | None, key_id: bytes | None) -> Any:
        if label is None and key_id is None:
            raise ValueError("Give a key label, a key ID or both.")
        found = self._find(object_class, label, key_id)
        what = f"{object_class.name.lower().replace('_', ' ')} with {_describe(label, key_id)}"
        if not found:
            raise errors.KeyNotFound(f"no {what} on {self.token}")
        if len(found) > 1:
            hint = "; give its ID" if key_id is None else ""
            raise errors.AmbiguousKey(f"{len(found)} objects match: {what} on {self.token}{hint}")
        return found[0]

    def generate_key_pair(self, spec: KeySpec, *, label: str, key_id: bytes) -> TokenPrivateKey:
        """Generate a key pair on the token: the private half sensitive, never extractable, sign only."""
        if not label:
            raise ValueError("A key needs a non-empty label.")
        if not isinstance(key_id, bytes) or not key_id:
            raise ValueError("A key needs a non-empty bytes ID.")
        if self._find(None, None, key_id):
            raise ValueError(f"An object with ID {key_id.hex()} already exists on {self.token}.")
        options: dict[str, Any] = {
            "id": key_id, "label": label, "store": True,
            "capabilities": MechanismFlag.SIGN | MechanismFlag.VERIFY,
            "public_template": {Attribute.PRIVATE: False, Attribute.VERIFY: True},
            "private_template": {
                Attribute.PRIVATE: True, Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                Attribute.SIGN: True, Attribute.DECRYPT: False, Attribute.UNWRAP: False,
            },
        }
        with self._guard(f"generating a {spec} key pair {label!r}"):
            if spec.kind == "rsa":
                public, private = self._session.generate_keypair(KeyType.RSA, spec.size, **options)
            else:
                params = self._session.create_domain_parameters(
                    KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(spec.curve_name)}, local=True
                )
                public, private = params.generate_keypair(**options)
            public_key = read_public_key(public)
        return wrap_private_key(private, public_key, self._lock, f"{_describe(label, key_id)} on {self.token}")

    def private_key(self, *, label: str | None = None, key_id: bytes | None = None) -> TokenPrivateKey:
        """The one private key with this label and/or ID, as a ``cryptography`` private key."""
        private = self._one(ObjectClass.PRIVATE_KEY, label, key_id)
        with self._guard("reading a private key"):
            found_label, found_id = private[Attribute.LABEL], bytes(private[Attribute.ID])
            is_rsa = private[Attribute.KEY_TYPE] == KeyType.RSA
            public_key = read_public_key(private) if is_rsa else None
        if public_key is None:  # EC private keys do not carry their point: read the public object
            public = self._one(ObjectClass.PUBLIC_KEY, None, found_id)
            with self._guard("reading a public key"):
                public_key = read_public_key(public)
        name = f"{_describe(found_label, found_id)} on {self.token}"
        return wrap_private_key(private, public_key, self._lock, name)

    def public_key_der(self, *, label: str | None = None, key_id: bytes | None = None) -> bytes:
        """The DER SubjectPublicKeyInfo of the one public key with this label and/or ID."""
        public = self._one(ObjectClass.PUBLIC_KEY, label, key_id)
        with self._guard("reading a public key"):
            key = read_public_key(public)
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    def key_attributes(self, *, label: str | None = None, key_id: bytes | None = None) -> dict[str, bool]:
        """How the private key was made and is protected: local, sensitive, extractable..."""
        names = {
            "local": Attribute.LOCAL, "sensitive": Attribute.SENSITIVE, "extractable": Attribute.EXTRACTABLE,
            "always_sensitive": Attribute.ALWAYS_SENSITIVE, "never_extractable": Attribute.NEVER_EXTRACTABLE,
        }
        private = self._one(ObjectClass.PRIVATE_KEY, label, key_id)
        with self._guard("reading key attributes"):
            values = private.get_attributes(list(names.values()))
        return {name: bool(values[attribute]) for name, attribute in names.items()}

    def store_certificate(self, der: bytes, *, label: str, key_id: bytes) -> None:
        """Store an X.509 certificate under the ID of its key pair, as middleware expects."""
        certificate = x509.load_der_x509_certificate(der)
        spki = certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if self._find(ObjectClass.PUBLIC_KEY, None, key_id) and self.public_key_der(key_id=key_id) != spki:
            raise ValueError(f"The certificate's public key is not the key with ID {key_id.hex()}.")
        with self._guard(f"storing certificate {label!r}"):
            self._session.create_object({
                Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                Attribute.TOKEN: True, Attribute.PRIVATE: False, Attribute.LABEL: label, Attribute.ID: key_id,
                Attribute.SUBJECT: certificate.subject.public_bytes(),
                Attribute.ISSUER: certificate.issuer.public_bytes(),
                Attribute.SERIAL_NUMBER: Integer(certificate.serial_number).dump(),
                Attribute.VALUE: der,
            })

    def objects(self) -> list[TokenObject]:
        """Every object this session can see (private ones only when logged in as user)."""
        listed = []
        found = self._find(None, None, None)
        with self._guard("listing objects"):
            for obj in found:
                object_class = obj[Attribute.CLASS]
                key_type = None
                if object_class in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY, ObjectClass.SECRET_KEY):
                    key_type = obj[Attribute.KEY_TYPE].name.lower()
                label = id_ = None
                with suppress(p11x.AttributeTypeInvalid):
                    label, id_ = obj[Attribute.LABEL], bytes(obj[Attribute.ID])
                listed.append(TokenObject(object_class.name.lower(), key_type, label or "", (id_ or b"").hex()))
        return listed

    def certificates(self) -> list[tuple[TokenObject, bytes]]:
        """The X.509 certificates on the token, each with its DER value."""
        found = self._find(ObjectClass.CERTIFICATE, None, None)
        listed = []
        with self._guard("reading certificates"):
            for obj in found:
                label, id_ = obj[Attribute.LABEL], bytes(obj[Attribute.ID])
                listed.append((TokenObject("certificate", None, label or "", id_.hex()), bytes(obj[Attribute.VALUE])))
        return listed

    def delete_objects(self, *, key_id: bytes | None = None) -> int:
        """Destroy the objects with this ID, or every object the session can see; return how many."""
        doomed = self._find(None, None, key_id)
        with self._guard("deleting objects"):
            for obj in doomed:
                obj.destroy()
        return len(doomed)

    def init_user_pin(self, pin: str) -> None:
        """Set (or reset, unblocking it) the user PIN; needs an SO session."""
        if self.role != "so":
            raise errors.TokenError(f"resetting the user PIN of {self.token} needs an SO session")
        with self._guard("setting the user PIN"):
            self._session.init_pin(pin)

    def set_pin(self, old_pin: str, new_pin: str) -> None:
        """Change the PIN of the session's user (the SO PIN in an SO session)."""
        with self._guard("changing the PIN"):
            self._session.set_pin(old_pin, new_pin)

    def __repr__(self) -> str:
        return f"<TokenSession {self.role} on {self.token}>"
