"""The PKCS#11 token layer, against real SoftHSM2 tokens (one fresh token per test)."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import NameOID
from pkcs11 import TokenFlag
from pkcs11 import exceptions as p11x

from ca import errors
from ca.signer import KeySigner
from ca.token import (
    KeySpec,
    PKCS11ECPrivateKey,
    PKCS11RSAPrivateKey,
    Token,
    TokenSession,
    find_softhsm_module,
    initialize_token,
    list_tokens,
    load_module,
    pkcs11_errors,
)
from tests.conftest import TestToken, set_softhsm_token_flags

ALL_SPECS = ["rsa-2048", "rsa-3072", "rsa-4096", "ec-p256", "ec-p384"]
SIGNING_SPECS = ["rsa-2048", "ec-p256", "ec-p384"]


@contextmanager
def user_session(token: TestToken) -> Iterator[TokenSession]:
    with token.open().session(user_pin=token.pin) as session:
        yield session


def verify(key: PKCS11RSAPrivateKey | PKCS11ECPrivateKey, signature: bytes, data: bytes,
           algorithm: hashes.HashAlgorithm) -> None:
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        public.verify(signature, data, padding.PKCS1v15(), algorithm)
    else:
        public.verify(signature, data, ec.ECDSA(algorithm))


def self_signed(key: PKCS11RSAPrivateKey | PKCS11ECPrivateKey, common_name: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


# --- key specs and modules --------------------------------------------------------------------

@pytest.mark.parametrize("text", ALL_SPECS)
def test_key_spec_text_round_trips(text: str) -> None:
    assert str(KeySpec.parse(text)) == text


@pytest.mark.parametrize("text", ["rsa-1024", "rsa-3000", "ec-p521", "dsa-2048", "rsa", ""])
def test_key_spec_refuses_unsupported_keys(text: str) -> None:
    with pytest.raises(ValueError, match="rsa-2048/3072/4096 or ec-p256/p384"):
        KeySpec.parse(text)


def test_module_path_comes_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUICHET_PKCS11_MODULE", "/opt/vendor/libhsm.so")
    assert find_softhsm_module() == "/opt/vendor/libhsm.so"


def test_unloadable_module_names_its_path(tmp_path: Path) -> None:
    missing = str(tmp_path / "libnothing.so")
    with pytest.raises(errors.ModuleNotLoadable, match="libnothing.so"):
        load_module(missing)


# --- initialising and opening tokens --------------------------------------------------------

@pytest.mark.parametrize("label", ["", "x" * 33, "é" * 17, " padded"])
def test_initialize_token_refuses_bad_label(pkcs11_module: str, label: str) -> None:
    with pytest.raises(ValueError, match="1 to 32 bytes"):
        initialize_token(pkcs11_module, label=label, so_pin="12345678")


def test_initialize_token_refuses_a_label_already_in_use(token: TestToken) -> None:
    with pytest.raises(errors.TokenError, match=token.label):
        initialize_token(token.module, label=token.label, so_pin="12345678")


def test_open_token_by_label(token: TestToken) -> None:
    opened = Token.open(token.module, label=token.label)
    assert (opened.label, opened.serial) == (token.label, token.serial)
    assert opened.model == "SoftHSM v2" and opened.manufacturer == "SoftHSM project"
    assert opened.initialized and opened.user_pin_initialized


def test_open_token_by_serial(token: TestToken) -> None:
    assert Token.open(token.module, serial=token.serial).label == token.label


def test_unknown_label_raises_token_not_found(pkcs11_module: str) -> None:
    with pytest.raises(errors.TokenNotFound, match="'no-such-token'"):
        Token.open(pkcs11_module, label="no-such-token")


def test_list_tokens_shows_initialised_tokens_only(token: TestToken) -> None:
    listed = list_tokens(token.module)
    assert token.serial in {t.serial for t in listed}
    assert all(t.initialized for t in listed)
    assert any(not t.initialized for t in Token.list_tokens(token.module, include_blank=True))


def test_reinitialising_a_token_by_serial_wipes_it(token: TestToken) -> None:
    with user_session(token) as session:
        session.generate_key_pair(KeySpec.parse("ec-p256"), label="old", key_id=b"\x01")
    again = initialize_token(token.module, label=f"{token.label}-reused", so_pin=token.so_pin,
                             user_pin="9999-new", serial=token.serial)
    assert (again.label, again.serial) == (f"{token.label}-reused", token.serial)
    with again.session(user_pin="9999-new") as session:
        assert session.objects() == []


def test_reinitialising_a_token_needs_its_so_pin(token: TestToken) -> None:
    with pytest.raises(errors.PinIncorrect):
        initialize_token(token.module, label=token.label, so_pin="wrong-so-pin", serial=token.serial)


# --- PINs ---------------------------------------------------------------------------------------

def test_wrong_user_pin_raises_pin_incorrect(token: TestToken) -> None:
    with pytest.raises(errors.PinIncorrect), token.open().session(user_pin="0000-wrong"):
        pass


def test_error_messages_never_show_the_pin(token: TestToken) -> None:
    with pytest.raises(errors.PinIncorrect) as raised, token.open().session(user_pin="secret-4711"):
        pass
    assert "4711" not in str(raised.value) and "4711" not in repr(raised.value)
    assert token.pin not in repr(token)


def test_softhsm_never_blocks_the_user_pin(token: TestToken) -> None:
    """SoftHSM 2.6 keeps no retry counter: wrong PINs only set CKF_USER_PIN_COUNT_LOW."""
    for _ in range(15):
        with pytest.raises(errors.PinIncorrect), token.open().session(user_pin="0000-wrong"):
            pass
    opened = token.open()
    assert opened.user_pin_count_low and not opened.user_pin_locked
    with opened.session(user_pin=token.pin):
        pass
    assert not opened.user_pin_count_low


def test_locked_user_pin_raises_pin_locked(token: TestToken) -> None:
    set_softhsm_token_flags(token, TokenFlag.USER_PIN_LOCKED)
    opened = token.open()
    assert opened.user_pin_locked
    with pytest.raises(errors.PinLocked, match="locked"), opened.session(user_pin=token.pin):
        pass


@pytest.mark.parametrize(("library_error", "ours"), [
    (p11x.PinIncorrect, errors.PinIncorrect),
    (p11x.PinLocked, errors.PinLocked),
    (p11x.PinLenRange, errors.PinPolicyError),
    (p11x.PinInvalid, errors.PinPolicyError),
    (p11x.NoSuchToken, errors.TokenNotFound),
    (p11x.MultipleTokensReturned, errors.TokenNotFound),
    (p11x.TokenNotPresent, errors.TokenRemoved),
    (p11x.DeviceRemoved, errors.TokenRemoved),
    (p11x.SessionClosed, errors.TokenRemoved),
    (p11x.SessionHandleInvalid, errors.TokenRemoved),
    (p11x.TokenNotRecognised, errors.TokenRemoved),
    (p11x.MechanismInvalid, errors.MechanismUnsupported),
    (p11x.KeyTypeInconsistent, errors.MechanismUnsupported),
    (p11x.FunctionNotSupported, errors.MechanismUnsupported),
])
def test_library_errors_become_token_errors(
    library_error: type[p11x.PKCS11Error], ours: type[errors.TokenError]
) -> None:
    with pytest.raises(ours, match="signing"), pkcs11_errors("signing"):
        raise library_error()


def test_other_library_errors_keep_their_name() -> None:
    with pytest.raises(errors.TokenError, match="DataLenRange"), pkcs11_errors("signing"):
        raise p11x.DataLenRange()


def test_security_officer_resets_user_pin(token: TestToken) -> None:
    with token.open().session(so_pin=token.so_pin) as session:
        session.init_user_pin("2468-reset")
    with pytest.raises(errors.PinIncorrect), token.open().session(user_pin=token.pin):
        pass
    with token.open().session(user_pin="2468-reset"):
        pass


def test_resetting_user_pin_needs_so_session(token: TestToken) -> None:
    with user_session(token) as session, pytest.raises(errors.TokenError, match="SO session"):
        session.init_user_pin("2468-reset")


def test_user_changes_own_pin(token: TestToken) -> None:
    with user_session(token) as session:
        session.set_pin(token.pin, "1357-changed")
    with token.open().session(user_pin="1357-changed"):
        pass


def test_two_sessions_of_one_process_share_the_login(token: TestToken) -> None:
    with user_session(token) as first, user_session(token) as second:
        first.generate_key_pair(KeySpec.parse("ec-p256"), label="k", key_id=b"\x01")
        assert second.private_key(label="k").key_size == 256


def test_private_objects_hidden_once_sessions_close(token: TestToken) -> None:
    with user_session(token) as session:
        session.generate_key_pair(KeySpec.parse("ec-p256"), label="k", key_id=b"\x01")
    with token.open().session() as public:
        assert {o.object_class for o in public.objects()} == {"public_key"}


# --- keys ---------------------------------------------------------------------------------------

def test_missing_key_raises_key_not_found_naming_it(token: TestToken) -> None:
    with user_session(token) as session, pytest.raises(errors.KeyNotFound, match="'absent'"):
        session.private_key(label="absent")


def test_two_keys_with_one_label_raise_ambiguous_key_naming_it(token: TestToken) -> None:
    with user_session(token) as session:
        session.generate_key_pair(KeySpec.parse("ec-p256"), label="twin", key_id=b"\x01")
        session.generate_key_pair(KeySpec.parse("ec-p256"), label="twin", key_id=b"\x02")
        with pytest.raises(errors.AmbiguousKey, match="'twin'"):
            session.private_key(label="twin")
        assert session.private_key(label="twin", key_id=b"\x02").curve.name == "secp256r1"


def test_key_ids_are_unique_on_a_token(token: TestToken) -> None:
    with user_session(token) as session:
        session.generate_key_pair(KeySpec.parse("ec-p256"), label="a", key_id=b"\x01")
        with pytest.raises(ValueError, match="ID 01 already exists"):
            session.generate_key_pair(KeySpec.parse("ec-p256"), label="b", key_id=b"\x01")


@pytest.mark.parametrize("text", ALL_SPECS)
def test_generated_key_is_made_on_token_and_never_leaves_it(token: TestToken, text: str) -> None:
    spec = KeySpec.parse(text)
    with user_session(token) as session:
        key = session.generate_key_pair(spec, label="k", key_id=b"\x07")
        found = session.private_key(key_id=b"\x07")
        attributes = session.key_attributes(key_id=b"\x07")
    assert attributes == {"local": True, "sensitive": True, "extractable": False,
                          "always_sensitive": True, "never_extractable": True}
    assert key.key_size == found.key_size == spec.size
    assert isinstance(found, PKCS11RSAPrivateKey if spec.kind == "rsa" else PKCS11ECPrivateKey)


def test_private_key_material_is_refused(token: TestToken) -> None:
    with user_session(token) as session:
        key = session.generate_key_pair(KeySpec.parse("rsa-2048"), label="k", key_id=b"\x01")
        for attempt in (key.private_numbers,
                        lambda: key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()),
                        lambda: key.decrypt(b"x", padding.PKCS1v15())):
            with pytest.raises(errors.TokenError, match="never leaves the token"):
                attempt()


def test_public_key_der_matches_the_private_keys_public_key(token: TestToken) -> None:
    with user_session(token) as session:
        key = session.generate_key_pair(KeySpec.parse("ec-p384"), label="k", key_id=b"\x01")
        der = session.public_key_der(label="k")
    assert der == key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("algorithm", [hashes.SHA256(), hashes.SHA384()], ids=["sha256", "sha384"])
@pytest.mark.parametrize("text", SIGNING_SPECS)
def test_signatures_verify_with_the_public_key(token: TestToken, text: str,
                                               algorithm: hashes.HashAlgorithm) -> None:
    data = b"bordereau de remise n. 42"
    digest = hashes.Hash(algorithm)
    digest.update(data)
    with user_session(token) as session:
        key = session.generate_key_pair(KeySpec.parse(text), label="k", key_id=b"\x01")
        if isinstance(key, PKCS11RSAPrivateKey):
            signatures = [key.sign(data, padding.PKCS1v15(), algorithm),
                          key.sign(digest.finalize(), padding.PKCS1v15(), Prehashed(algorithm))]
        else:
            signatures = [key.sign(data, ec.ECDSA(algorithm)),
                          key.sign(digest.finalize(), ec.ECDSA(Prehashed(algorithm)))]
    for signature in signatures:
        verify(key, signature, data, algorithm)


def test_pss_padding_is_refused(token: TestToken) -> None:
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    with user_session(token) as session:
        key = session.generate_key_pair(KeySpec.parse("rsa-2048"), label="k", key_id=b"\x01")
        with pytest.raises(errors.MechanismUnsupported, match="PKCS#1 v1.5"):
            key.sign(b"data", pss, hashes.SHA256())


@pytest.mark.parametrize("text", ["rsa-3072", "ec-p384"])
def test_self_signed_certificate_verifies_with_openssl(token: TestToken, tmp_path: Path, text: str) -> None:
    with user_session(token) as session:
        key = session.generate_key_pair(KeySpec.parse(text), label="root", key_id=b"\x01")
        certificate = self_signed(key, "AC Racine de test")
    pem = tmp_path / "root.pem"
    pem.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    result = subprocess.run(["openssl", "verify", "-CAfile", str(pem), str(pem)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_csr_signed_on_the_token_is_valid(token: TestToken) -> None:
    with user_session(token) as session:
        key = session.generate_key_pair(KeySpec.parse("ec-p256"), label="holder", key_id=b"\x01")
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Marie DUPONT")]))
               .sign(key, hashes.SHA256()))
    assert csr.is_signature_valid
    assert csr.public_key() == key.public_key()


def test_key_signer_signs_with_a_token_key(token: TestToken) -> None:
    with user_session(token) as session:
        signer = KeySigner(session.generate_key_pair(KeySpec.parse("rsa-2048"), label="ca", key_id=b"\x01"))
        signature = signer.sign(b"tbsCertList")
    verify(signer.key, signature, b"tbsCertList", signer.algorithm.hash_algorithm())  # type: ignore[arg-type]


def test_one_key_signs_safely_from_several_threads(token: TestToken) -> None:
    signed: list[tuple[bytes, bytes]] = []
    with user_session(token) as session:
        key = session.generate_key_pair(KeySpec.parse("ec-p256"), label="k", key_id=b"\x01")

        def sign_many(thread: int) -> None:
            for n in range(20):
                data = b"thread %d message %d" % (thread, n)
                signed.append((data, key.sign(data, ec.ECDSA(hashes.SHA256()))))

        threads = [threading.Thread(target=sign_many, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(signed) == 80
    for data, signature in signed:
        key.public_key().verify(signature, data, ec.ECDSA(hashes.SHA256()))


def test_threads_sign_in_parallel_each_with_its_own_session(token: TestToken) -> None:
    """Without CKF_OS_LOCKING_OK (python-pkcs11 initialises with NULL) SoftHSM crashes here."""
    with user_session(token) as session:
        session.generate_key_pair(KeySpec.parse("rsa-2048"), label="k", key_id=b"\x01")
    counts: list[int] = []

    def sign_many() -> None:
        with user_session(token) as own:
            key = own.private_key(key_id=b"\x01")
            for n in range(150):
                data = b"%d" % n
                key.public_key().verify(key.sign(data, padding.PKCS1v15(), hashes.SHA256()), data,
                                        padding.PKCS1v15(), hashes.SHA256())
            counts.append(n + 1)

    threads = [threading.Thread(target=sign_many) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counts == [150, 150, 150]


def test_key_used_after_its_session_closed_raises_token_removed(token: TestToken) -> None:
    with user_session(token) as session:
        key = session.generate_key_pair(KeySpec.parse("ec-p256"), label="k", key_id=b"\x01")
    with pytest.raises(errors.TokenRemoved):
        key.sign(b"late", ec.ECDSA(hashes.SHA256()))


# --- certificates and objects -----------------------------------------------------------------

def test_stored_certificate_is_listed_by_pkcs11_tool_under_the_key_id(token: TestToken) -> None:
    with user_session(token) as session:
        key = session.generate_key_pair(KeySpec.parse("rsa-2048"), label="porteur", key_id=b"\xab\xcd")
        session.store_certificate(self_signed(key, "Marie DUPONT").public_bytes(serialization.Encoding.DER),
                                  label="porteur", key_id=b"\xab\xcd")
    listing = subprocess.run(
        ["pkcs11-tool", "--module", token.module, "--token-label", token.label,
         "--login", "--pin", token.pin, "--list-objects"],
        capture_output=True, text=True, check=True,
    ).stdout
    blocks = [block for block in listing.split("\n") if block and not block.startswith(" ")]
    assert sorted(b.split(";")[0] for b in blocks) == ["Certificate Object", "Private Key Object",
                                                       "Public Key Object"]
    ids = [line.split(":", 1)[1].strip() for line in listing.splitlines() if line.strip().startswith("ID:")]
    assert ids == ["abcd", "abcd", "abcd"]


def test_certificate_for_another_key_is_refused(token: TestToken) -> None:
    with user_session(token) as session:
        session.generate_key_pair(KeySpec.parse("ec-p256"), label="a", key_id=b"\x01")
        other = session.generate_key_pair(KeySpec.parse("ec-p256"), label="b", key_id=b"\x02")
        der = self_signed(other, "B").public_bytes(serialization.Encoding.DER)
        with pytest.raises(ValueError, match="not the key with ID 01"):
            session.store_certificate(der, label="a", key_id=b"\x01")


def test_objects_lists_key_pair_and_certificate(token: TestToken) -> None:
    with user_session(token) as session:
        key = session.generate_key_pair(KeySpec.parse("ec-p256"), label="k", key_id=b"\x01")
        session.store_certificate(self_signed(key, "K").public_bytes(serialization.Encoding.DER),
                                  label="k", key_id=b"\x01")
        listed = {(o.object_class, o.key_type, o.label, o.id_hex) for o in session.objects()}
    assert listed == {("private_key", "ec", "k", "01"), ("public_key", "ec", "k", "01"),
                      ("certificate", None, "k", "01")}


def test_delete_objects_by_id_keeps_other_keys(token: TestToken) -> None:
    with user_session(token) as session:
        session.generate_key_pair(KeySpec.parse("ec-p256"), label="old", key_id=b"\x01")
        session.generate_key_pair(KeySpec.parse("ec-p256"), label="new", key_id=b"\x02")
        assert session.delete_objects(key_id=b"\x01") == 2
        assert {o.label for o in session.objects()} == {"new"}


def test_delete_objects_without_id_wipes_the_token(token: TestToken) -> None:
    with user_session(token) as session:
        session.generate_key_pair(KeySpec.parse("ec-p256"), label="a", key_id=b"\x01")
        session.generate_key_pair(KeySpec.parse("rsa-2048"), label="b", key_id=b"\x02")
        assert session.delete_objects() == 4
        assert session.objects() == []


def test_token_factory_gives_distinct_tokens(token_factory: Callable[[], TestToken]) -> None:
    first, second = token_factory(), token_factory()
    assert first.label != second.label and first.serial != second.serial
