"""Rules of ca.profiles: SIRENE identifiers, the holder subject, profiles, CSRs and keys."""

from __future__ import annotations

import datetime as dt

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import AttributeOID, NameOID

from ca.errors import RequestError
from ca.profiles import (
    PROFILES,
    Profile,
    Usage,
    check_public_key,
    check_siren,
    check_siret,
    get_profile,
    luhn_valid,
    parse_csr,
)
from tests.ca.pki_fixtures import holder_key, holder_subject, make_csr

UTC = dt.timezone.utc
END_2030 = dt.datetime(2030, 12, 31, 23, 59, 59, tzinfo=UTC)
IN_2031 = dt.datetime(2031, 1, 1, tzinfo=UTC)


# --- SIREN / SIRET ---------------------------------------------------------------------------

def test_luhn_valid_examples():
    assert luhn_valid("212201941")
    assert luhn_valid("0")
    assert not luhn_valid("212201942")
    assert not luhn_valid("")
    assert not luhn_valid("21220194a")


def test_siren_luhn_refused():
    with pytest.raises(RequestError, match="SIREN 212201942"):
        check_siren("212201942")


@pytest.mark.parametrize("value", ["21220194", "2122019411", "21220 1941", "２１２２０１９４１", "", None])
def test_siren_not_nine_ascii_digits_refused(value):
    with pytest.raises(RequestError, match="SIREN must be 9 digits"):
        check_siren(value)


def test_siren_valid_returned():
    assert check_siren("212201941") == "212201941"


def test_siret_luhn_refused():
    with pytest.raises(RequestError, match="SIRET 21220194100012"):
        check_siret("21220194100012")


def test_siret_with_invalid_siren_refused():
    with pytest.raises(RequestError, match="SIREN"):
        check_siret("21220194200017")


def test_siret_not_fourteen_digits_refused():
    with pytest.raises(RequestError, match="SIRET must be 14 digits"):
        check_siret("2122019410001")


def test_siret_la_poste_sum_multiple_of_5_accepted():
    assert not luhn_valid("35600000049837")
    assert check_siret("35600000049837") == "35600000049837"


def test_siret_la_poste_sum_not_multiple_of_5_refused():
    with pytest.raises(RequestError, match="SIRET 35600000049838"):
        check_siret("35600000049838")


def test_siret_la_poste_head_office_uses_luhn():
    assert check_siret("35600000000048") == "35600000000048"


# --- holder subject --------------------------------------------------------------------------

def _rdn_values(name: x509.Name) -> list[tuple[x509.ObjectIdentifier, str]]:
    return [(a.oid, a.value) for a in name]


def test_subject_attributes_in_profile_order():
    assert _rdn_values(holder_subject().to_name()) == [
        (NameOID.COUNTRY_NAME, "FR"),
        (NameOID.ORGANIZATION_NAME, "Commune de Plouézec"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "0002 21220194100011"),
        (NameOID.ORGANIZATION_IDENTIFIER, "NTRFR-212201941"),
        (NameOID.GIVEN_NAME, "Anne-Marie"),
        (NameOID.SURNAME, "Le Goff"),
        (NameOID.COMMON_NAME, "Anne-Marie LE GOFF"),
        (NameOID.TITLE, "Secrétaire de mairie"),
    ]


def test_subject_country_printable_string_others_utf8_string():
    der = holder_subject().to_name().public_bytes()
    tags = [(atv["type"].dotted, atv["value"].dump()[0]) for rdn in asn1_x509.Name.load(der).chosen for atv in rdn]
    assert tags[0] == ("2.5.4.6", 0x13)
    assert all(tag == 0x0C for _, tag in tags[1:])


def test_ou_uses_siren_without_siret():
    name = holder_subject(siret=None).to_name()
    assert name.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "0002 212201941"


def test_common_name_is_given_names_and_upper_case_surname():
    subject = holder_subject(given_names="Jean-Loïc Hervé", surname="Le Bihan-Quéré")
    assert subject.common_name == "Jean-Loïc Hervé LE BIHAN-QUÉRÉ"


def test_title_optional():
    name = holder_subject(title=None).to_name()
    assert name.get_attributes_for_oid(NameOID.TITLE) == []


def test_siret_must_start_with_siren():
    with pytest.raises(RequestError, match="does not start with the SIREN"):
        holder_subject(siren="212900195", siret="21220194100011")


def test_subject_siren_luhn_refused():
    with pytest.raises(RequestError, match="SIREN"):
        holder_subject(siren="212201942", siret=None)


def test_french_accents_apostrophes_and_hyphens_accepted():
    subject = holder_subject(given_names="Hélène-Françoise Œlya", surname="D'Éon de l’Île")
    assert subject.common_name == "Hélène-Françoise Œlya D'ÉON DE L’ÎLE"


def test_organization_upper_bound_64():
    holder_subject(organization="C" * 64)
    with pytest.raises(RequestError, match="organization name is 65 characters long, at most 64"):
        holder_subject(organization="C" * 65)


def test_common_name_upper_bound_64():
    holder_subject(given_names="A" * 30, surname="B" * 33)  # "A*30 B*33" is 64 characters
    with pytest.raises(RequestError, match="common name .* is 65 characters long"):
        holder_subject(given_names="A" * 31, surname="B" * 33)


def test_title_upper_bound_64():
    with pytest.raises(RequestError, match="title is 65 characters long"):
        holder_subject(title="T" * 65)


def test_surname_with_comma_refused():
    with pytest.raises(RequestError, match="surname 'DUBOIS, O=Evil'"):
        holder_subject(surname="DUBOIS, O=Evil")


def test_organization_with_comma_stays_one_attribute_value():
    name = holder_subject(organization="Syndicat mixte, eau et assainissement").to_name()
    organizations = name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert [o.value for o in organizations] == ["Syndicat mixte, eau et assainissement"]
    assert len(name.rdns) == 8
    assert r"O=Syndicat mixte\, eau et assainissement" in name.rfc4514_string()


def test_organization_with_equals_sign_refused():
    with pytest.raises(RequestError, match="organization name"):
        holder_subject(organization="Commune, O=Evil")


@pytest.mark.parametrize("field", ["given_names", "surname", "organization", "title"])
def test_control_character_refused(field):
    with pytest.raises(RequestError, match="not allowed"):
        holder_subject(**{field: "Anne\nMarie"})


@pytest.mark.parametrize("value", [" Anne", "Anne ", "Anne  Marie", "Anne3", "Анна", ""])
def test_given_names_refused(value):
    with pytest.raises(RequestError, match="given names"):
        holder_subject(given_names=value)


@pytest.mark.parametrize("email", [
    "anne", "anne@", "@example.fr", "anne@example", "anne..marie@example.fr", "anne marie@example.fr",
    "anné@example.fr", "anne@exa_mple.fr", "anne@-example.fr", "a" * 65 + "@example.fr",
])
def test_email_syntax_refused(email):
    with pytest.raises(RequestError, match="email address"):
        holder_subject(email=email)


def test_email_plus_and_subdomain_accepted():
    assert holder_subject(email="anne.le-goff+rgs@mairie.plouezec.example.fr").email


def test_subject_is_frozen():
    with pytest.raises(AttributeError):
        holder_subject().surname = "Evil"  # type: ignore[misc]


# --- profiles --------------------------------------------------------------------------------

def test_profile_names():
    assert set(PROFILES) == {"rgs2-entite-double", "rgs2-entite-authentification", "rgs2-entite-signature"}


def test_double_usage_key_usage_bits():
    ku = get_profile("rgs2-entite-double").key_usage()
    assert (ku.digital_signature, ku.content_commitment, ku.key_encipherment) == (True, True, False)
    assert get_profile("rgs2-entite-double").usage is Usage.DOUBLE


def test_authentication_key_usage_digital_signature_only():
    ku = get_profile("rgs2-entite-authentification").key_usage()
    assert (ku.digital_signature, ku.content_commitment) == (True, False)


def test_signature_key_usage_non_repudiation_only():
    ku = get_profile("rgs2-entite-signature").key_usage()
    assert (ku.digital_signature, ku.content_commitment) == (False, True)


def test_profiles_max_validity_three_years():
    assert {p.max_validity for p in PROFILES.values()} == {dt.timedelta(days=1096)}


def test_profile_without_key_usage_refused():
    with pytest.raises(ValueError, match="no key usage bit"):
        Profile("vide", Usage.DOUBLE, "vide", False, False)


def test_unknown_profile_refused():
    with pytest.raises(RequestError, match="unknown certificate profile 'rgs3'"):
        get_profile("rgs3")


# --- public keys -----------------------------------------------------------------------------

def test_rsa_2048_accepted_until_2030():
    check_public_key(holder_key("rsa2048").public_key(), not_after=END_2030)


def test_rsa_2048_refused_after_2030():
    with pytest.raises(RequestError, match="RSA key of 2048 bits refused: at least 3072"):
        check_public_key(holder_key("rsa2048").public_key(), not_after=IN_2031)


def test_rsa_2048_date_rule_needs_aware_not_after():
    with pytest.raises(ValueError, match="timezone-aware"):
        check_public_key(holder_key("rsa2048").public_key(), not_after=dt.datetime(2030, 1, 1))


def test_rsa_3072_accepted_after_2030():
    check_public_key(holder_key("rsa3072").public_key(), not_after=IN_2031)


def test_rsa_exponent_3_refused():
    with pytest.raises(RequestError, match="exponent 3"):
        check_public_key(holder_key("rsa2048-e3").public_key(), not_after=END_2030)


@pytest.mark.parametrize("kind", ["p256", "p384"])
def test_ecdsa_p256_p384_accepted(kind):
    check_public_key(holder_key(kind).public_key(), not_after=IN_2031)


def test_ecdsa_p521_refused():
    with pytest.raises(RequestError, match="secp521r1 \\(521 bits\\) refused"):
        check_public_key(holder_key("p521").public_key(), not_after=END_2030)


def test_ed25519_refused():
    with pytest.raises(RequestError, match="Ed25519PublicKey key refused"):
        check_public_key(ed25519.Ed25519PrivateKey.generate().public_key(), not_after=END_2030)


# --- CSRs ------------------------------------------------------------------------------------

def test_csr_pem_and_der_accepted():
    key = holder_key("p256")
    pem = make_csr(key)
    der = make_csr(key, encoding=serialization.Encoding.DER)
    assert parse_csr(pem).public_key() == key.public_key()
    assert parse_csr(der).public_key() == key.public_key()


@pytest.mark.parametrize("data", [
    b"", b"garbage", b"-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgQ1NS\n-----END CERTIFICATE REQUEST-----\n",
    b"\x30\x03\x02\x01\x00",
])
def test_csr_garbage_refused(data):
    with pytest.raises(RequestError, match="cannot be read"):
        parse_csr(data)


def test_csr_bad_signature_refused():
    der = bytearray(make_csr(holder_key("rsa2048"), encoding=serialization.Encoding.DER))
    der[-10] ^= 0x01  # inside the signature BIT STRING, the last field of the request
    with pytest.raises(RequestError, match="signature does not verify"):
        parse_csr(bytes(der))


def test_csr_rsa_1024_refused():
    with pytest.raises(RequestError, match="RSA key of 1024 bits refused"):
        parse_csr(make_csr(holder_key("rsa1024")))


def test_csr_p521_refused():
    with pytest.raises(RequestError, match="secp521r1"):
        parse_csr(make_csr(holder_key("p521")))


def test_csr_with_extension_request_refused():
    csr = make_csr(holder_key("p256"), extensions=[(x509.BasicConstraints(ca=True, path_length=None), True)])
    with pytest.raises(RequestError, match="requests extensions"):
        parse_csr(csr)


def test_csr_with_harmless_extension_request_refused_too():
    csr = make_csr(holder_key("p256"), extensions=[
        (x509.SubjectAlternativeName([x509.RFC822Name("anne@example.fr")]), False),
    ])
    with pytest.raises(RequestError, match="requests extensions"):
        parse_csr(csr)


def test_csr_with_other_attribute_refused():
    csr = make_csr(holder_key("p256"), attributes=[(AttributeOID.CHALLENGE_PASSWORD, b"secret")])
    with pytest.raises(RequestError, match="carries attributes \\(1.2.840.113549.1.9.7\\)"):
        parse_csr(csr)


def test_csr_not_bytes_refused():
    with pytest.raises(RequestError, match="bytes"):
        parse_csr("-----BEGIN CERTIFICATE REQUEST-----")  # type: ignore[arg-type]
