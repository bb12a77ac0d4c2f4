"""Small builders shared by RA tests: CSRs, subjects, subprocess helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ca.profiles import HolderSubject
from ra.instance import Instance

VENV_BIN = Path(sys.executable).parent


def holder(**overrides: object) -> HolderSubject:
    values: dict[str, object] = dict(
        organization="COMMUNE DE SAINT-BRIEUC", siren="212202782", siret=None,
        given_names="Marie", surname="Dubois", email="marie.dubois@saint-brieuc.example.fr",
        title=None,
    )
    values.update(overrides)
    return HolderSubject(**values)  # type: ignore[arg-type]


def csr_for(key: object = None, *, extensions: bool = False) -> bytes:
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Evil")])
    )
    if extensions:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    csr = builder.sign(key, hashes.SHA256())  # type: ignore[arg-type]
    return csr.public_bytes(serialization.Encoding.PEM)


def rsa_key(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, bits)


def instance_env(instance: Instance) -> dict[str, str]:
    s = instance.settings
    env = dict(os.environ)
    env.update(
        GUICHET_INSTANCE=str(s.instance), GUICHET_DATABASE_URL=s.database_url,
        GUICHET_ROOT_TOKEN=s.root_token_label, GUICHET_CA_TOKEN=s.ca_token_label,
        GUICHET_PUBLIC_URL=s.public_url, GUICHET_SECRET_KEY=s.secret_key.hex(),
    )
    return env


def guichet(instance: Instance, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real ``guichet`` command against an instance, in its own process."""
    return subprocess.run(
        [str(VENV_BIN / "guichet"), *args], env=instance_env(instance), capture_output=True,
        text=True, check=check, timeout=120,
    )


def write_pem(path: Path, der: bytes, kind: str = "CERTIFICATE") -> Path:
    import base64
    import textwrap

    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    path.write_text(f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n")
    return path
