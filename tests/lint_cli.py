"""pkilint's command-line linters run as a user would, failing the test if they could not run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def findings(tool: str, options: list[str], path: Path, *, severity: str = "WARNING") -> list[tuple[str, str]]:
    """(severity, code) of every finding at ``severity`` or worse.

    The JSON report must parse and the exit status must be the number of findings reported:
    a linter that did not run (bad arguments, unreadable file) fails the caller's test.
    """
    argv = [str(BIN / tool), "lint", *options, "-s", severity, "-f", "JSON", str(path)]
    completed = subprocess.run(argv, capture_output=True, text=True)
    report = json.loads(completed.stdout)
    found = [(f["severity"], f["code"]) for r in report["results"] for f in r["finding_descriptions"]]
    assert completed.returncode == len(found), completed.stderr
    return found


def etsi_findings(path: Path) -> list[tuple[str, str]]:
    """``lint_etsi_cert`` for an NCP natural-person certificate, WARNING and worse."""
    return findings("lint_etsi_cert", ["-t", "NCP-NATURAL-PERSON-CERTIFICATE"], path)


def etsi_errors(path: Path) -> list[tuple[str, str]]:
    return [f for f in etsi_findings(path) if f[0] in ("ERROR", "FATAL")]


def crl_errors(path: Path, kind: str = "CRL") -> list[tuple[str, str]]:
    """``lint_crl -t CRL|ARL -p PKIX``, ERROR and worse."""
    return findings("lint_crl", ["-t", kind, "-p", "PKIX"], path, severity="ERROR")
