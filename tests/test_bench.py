"""``guichet bench issuance`` runs end to end in its own throwaway instance and prints its figures."""

from __future__ import annotations

import re
import subprocess
import sys


def _guichet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ra.cli", *args], capture_output=True, text=True, timeout=600)


def test_bench_issuance_alternates_rounds_and_prints_the_ratio() -> None:
    run = _guichet("bench", "issuance", "--count", "16", "--workers", "2", "--rounds", "2")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert len([line for line in lines if line.startswith("  round ")]) == 2
    last = re.fullmatch(r"issuance certs_per_s=([\d.]+) raw_sign_per_s=([\d.]+) ratio=([\d.]+)", lines[-1])
    assert last, lines[-1]
    certs, raw, ratio = map(float, last.groups())
    assert certs > 0 and raw > 0 and abs(ratio - certs / raw) < 0.01


def test_bench_issuance_refuses_fewer_certificates_than_rounds() -> None:
    run = _guichet("bench", "issuance", "--count", "3", "--workers", "2", "--rounds", "2")
    assert run.returncode == 2
    assert "--count" in run.stderr and "at least" in run.stderr
