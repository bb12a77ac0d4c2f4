"""Station fixtures: the real back-office on a real HTTP server, on the shared instance of the RA tests.

The station runs in the test process (SoftHSM holds one token directory per process: tokens are
created in-process), and talks to the server over TCP like the operator's workstation.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.station.proxy import CuttingProxy


@pytest.fixture
def proxy(server: str) -> Iterator[CuttingProxy]:
    """A TCP proxy in front of the back-office that can lose an answer on the way back."""
    cutting = CuttingProxy(server)
    yield cutting
    cutting.close()
