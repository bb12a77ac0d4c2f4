"""The benchmark peer: openssl ca -gencrl on the same entries, timed in a child process."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from ra.bench_peer import PeerResult, index_line, measure_child, openssl_gencrl

UTC = dt.timezone.utc
REVOKED_AT = dt.datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
REASONS = [None, 1, 3, 4, 5]


def entries(count: int):
    for n in range(count):
        reason = REASONS[n % len(REASONS)]
        invalid_at = REVOKED_AT - dt.timedelta(days=1) if reason == 1 and n % 2 else None
        yield 2**120 + 7919 * n, REVOKED_AT + dt.timedelta(seconds=n), reason, invalid_at


def test_openssl_gencrl_lists_every_entry(tmp_path: Path) -> None:
    result = openssl_gencrl(entries(1_000), key_bits=2048, workdir=tmp_path)
    assert isinstance(result, PeerResult) and result.seconds > 0 and result.rss_mb > 1
    argv = ["openssl", "crl", "-in", str(tmp_path / "crl.pem"), "-noout", "-text"]
    text = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    listed = {int(line.split(":")[1], 16) for line in text.splitlines() if "Serial Number:" in line}
    assert listed == {serial for serial, *_ in entries(1_000)}
    assert text.count("Key Compromise") == 200
    assert text.count("Affiliation Changed") == 200
    assert text.count("Invalidity Date") == 100
    assert text.count("Mar  4 05:06:07 2025 GMT") == 1  # the first entry's revocation date


def test_index_line_has_the_openssl_ca_layout() -> None:
    line = index_line(0xABC, REVOKED_AT, 1, REVOKED_AT - dt.timedelta(days=1))
    assert line.split("\t") == [
        "R", "491231235959Z", "250304050607Z,keyTime,20250303050607Z", "0ABC", "unknown",
        "/CN=holder\n",
    ]  # fmt: skip
    assert index_line(0x10, REVOKED_AT, None, None).split("\t")[2:4] == ["250304050607Z", "10"]
    assert index_line(0x10, REVOKED_AT, 0, None).split("\t")[2] == "250304050607Z"


@pytest.mark.parametrize(
    "entry",
    [(1, REVOKED_AT, 9, None), (1, REVOKED_AT, 3, REVOKED_AT),
     (1, dt.datetime(2050, 1, 1, tzinfo=UTC), None, None),
     (1, REVOKED_AT.replace(tzinfo=None), None, None), (0, REVOKED_AT, None, None)],  # fmt: skip
)
def test_index_line_refuses_what_openssl_cannot_express(entry: tuple) -> None:
    with pytest.raises(ValueError):
        index_line(*entry)


def test_measure_child_reports_the_child_peak_rss() -> None:
    result = measure_child([sys.executable, "-c", "b = b'x' * (200 * 1024 * 1024)"])
    assert result.rss_mb >= 200
    assert result.seconds > 0


def test_measure_child_raises_when_the_child_fails() -> None:
    with pytest.raises(subprocess.CalledProcessError) as failure:
        measure_child([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"])
    assert failure.value.returncode == 3 and "boom" in failure.value.output
