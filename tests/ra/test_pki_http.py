"""Public PKI files over a real HTTP server."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from cryptography import x509

from ra.config import ISSUING_SLUG, ROOT_SLUG


def fetch(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


@pytest.mark.parametrize("slug", [ROOT_SLUG, ISSUING_SLUG])
def test_ca_certificates_served_as_der(server: str, slug: str) -> None:
    status, ctype, body = fetch(f"{server}/pki/{slug}.crt")
    assert status == 200 and ctype == "application/pkix-cert"
    x509.load_der_x509_certificate(body)


@pytest.mark.parametrize("slug", [ROOT_SLUG, ISSUING_SLUG])
def test_crls_served_as_der(server: str, slug: str) -> None:
    status, ctype, body = fetch(f"{server}/pki/{slug}.crl")
    assert status == 200 and ctype == "application/pkix-crl"
    x509.load_der_x509_crl(body)


@pytest.mark.parametrize("path", ["/pki/secret_key", "/pki/..%2Fsecret_key", "/pki/unknown.crt"])
def test_other_paths_are_404(server: str, path: str) -> None:
    status, ctype, body = fetch(server + path)
    assert status == 404 and b"secret" not in body.lower().replace(b"secret_key", b"")
