"""The benchmark's peer: ``openssl ca -gencrl`` on an index.txt, timed and measured in a child.

Standard library only. :func:`openssl_gencrl` prepares an RSA CA, an ``openssl ca`` config and
an index.txt holding the given revoked entries (none of which is timed), then times only
``openssl ca -gencrl``. :func:`measure_child` runs any command the same way, so guichet's own
CRL job can be measured in a child process of its own for a fair peak-RSS comparison.
"""

from __future__ import annotations

import json
import sys
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

# RFC 5280 reason code → the name ``openssl ca`` reads in index.txt (apps/ca.c crl_reasons).
# openssl cannot express privilegeWithdrawn (9) or aACompromise (10); removeFromCRL is left
# out as guichet refuses it in a full CRL.
OPENSSL_REASON_NAMES = {
    1: "keyCompromise",
    2: "CACompromise",
    3: "affiliationChanged",
    4: "superseded",
    5: "cessationOfOperation",
    6: "certificateHold",
}
# With an invalidity date, openssl needs its "pseudo reasons" (the date is a GeneralizedTime).
OPENSSL_REASON_WITH_DATE = {1: "keyTime", 2: "CAkeyTime"}

INDEX_EXPIRY = "491231235959Z"  # the expiry column: openssl ca -gencrl does not use it

CONFIG_TEMPLATE = """\
[ ca ]
default_ca = bench_ca

[ bench_ca ]
dir = {workdir}
database = $dir/index.txt
crlnumber = $dir/crlnumber
certificate = $dir/ca.crt
private_key = $dir/ca.key
new_certs_dir = $dir
serial = $dir/serial
default_md = sha256
default_crl_days = 7
unique_subject = no
policy = bench_policy
crl_extensions = bench_crl_ext

[ bench_policy ]
commonName = supplied

[ bench_crl_ext ]
authorityKeyIdentifier = keyid:always

[ req ]
distinguished_name = bench_dn
x509_extensions = bench_v3_ca
prompt = no

[ bench_dn ]
C = FR
O = guichet bench
CN = bench CA

[ bench_v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
"""


@dataclass(frozen=True)
class PeerResult:
    """Wall time and peak resident set size of one child process."""

    seconds: float
    rss_mb: float


# The measured command is forked from this tiny launcher, not from the (large) benchmark
# process: a child's ru_maxrss counts the memory it shared with its parent before exec.
_LAUNCHER = """
import json, os, sys, time
out, argv = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(argv[0], argv)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
with open(out, "w") as f:
    json.dump({"seconds": seconds, "rss_kib": usage.ru_maxrss,
               "exit": os.waitstatus_to_exitcode(status)}, f)
"""


def measure_child(
    argv: Sequence[str], env: Mapping[str, str] | None = None, *, cwd: Path | None = None
) -> PeerResult:
    """Run ``argv`` to completion; its wall time and peak RSS (``wait4``'s ``ru_maxrss``).

    Output goes to a temporary file, not a pipe, so a chatty child cannot block; it is
    quoted in the error when the child fails.
    """
    with tempfile.TemporaryFile() as output, tempfile.TemporaryDirectory() as tmp:
        result_path = Path(tmp) / "result.json"
        subprocess.run(
            [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(result_path), *argv],
            env=dict(env) if env is not None else None, cwd=cwd, stdin=subprocess.DEVNULL,
            stdout=output, stderr=subprocess.STDOUT, check=False,
        )
        result = json.loads(result_path.read_text()) if result_path.exists() else {"exit": -1}
        if result["exit"] != 0:
            output.seek(0)
            text = output.read().decode(errors="replace")[-4000:]
            raise subprocess.CalledProcessError(result["exit"], list(argv), output=text)
    return PeerResult(seconds=result["seconds"], rss_mb=result["rss_kib"] / 1024)  # KiB on Linux


def index_line(
    serial: int, revoked_at: datetime, reason: int | None, invalid_at: datetime | None
) -> str:
    """One index.txt line for a revoked certificate, as ``openssl ca -revoke`` writes them."""
    if serial <= 0:
        raise ValueError(f"serial {serial} is not positive.")
    revocation = _utc(revoked_at)
    if not 1950 <= revocation.year < 2050:
        raise ValueError("openssl ca stores revocation dates as UTCTime (years 1950 to 2049).")
    field = revocation.strftime("%y%m%d%H%M%SZ")
    if invalid_at is not None:
        if reason not in OPENSSL_REASON_WITH_DATE:
            raise ValueError("openssl ca keeps an invalidity date only for key or CA compromise.")
        when = _utc(invalid_at)
        field += f",{OPENSSL_REASON_WITH_DATE[reason]},{when.year:04d}{when:%m%d%H%M%S}Z"
    elif reason:
        if reason not in OPENSSL_REASON_NAMES:
            raise ValueError(f"openssl ca cannot express reason code {reason}.")
        field += "," + OPENSSL_REASON_NAMES[reason]
    hex_serial = f"{serial:X}"
    hex_serial = "0" * (len(hex_serial) % 2) + hex_serial  # openssl wants whole octets
    return f"R\t{INDEX_EXPIRY}\t{field}\t{hex_serial}\tunknown\t/CN=holder\n"


def openssl_gencrl(
    entries: Iterable[tuple[int, datetime, int | None, datetime | None]],
    *,
    key_bits: int,
    workdir: Path,
) -> PeerResult:
    """Time ``openssl ca -gencrl`` over ``entries``; the PEM CRL is left in ``workdir/crl.pem``."""
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "openssl.cnf"
    config.write_text(CONFIG_TEMPLATE.format(workdir=workdir))
    key, certificate = workdir / "ca.key", workdir / "ca.crt"
    _run(["openssl", "genpkey", "-algorithm", "RSA", "-out", str(key),
          "-pkeyopt", f"rsa_keygen_bits:{key_bits}"])  # fmt: skip
    _run(["openssl", "req", "-config", str(config), "-new", "-x509", "-days", "3650",
          "-key", str(key), "-out", str(certificate)])  # fmt: skip
    with open(workdir / "index.txt", "w", encoding="ascii", buffering=1 << 20) as index:
        for serial, revoked_at, reason, invalid_at in entries:
            index.write(index_line(serial, revoked_at, reason, invalid_at))
    (workdir / "index.txt.attr").write_text("unique_subject = no\n")
    (workdir / "crlnumber").write_text("01\n")
    gencrl = ["openssl", "ca", "-batch", "-config", str(config), "-gencrl",
              "-out", str(workdir / "crl.pem")]  # fmt: skip
    return measure_child(gencrl, cwd=workdir)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetimes must be timezone-aware.")
    return moment.astimezone(timezone.utc)


def _run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, capture_output=True)
