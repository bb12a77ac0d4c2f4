"""Station fixtures: the real back-office on a real HTTP server, on the shared instance of the RA tests.

The station runs in the test process (SoftHSM holds one token directory per process: tokens are
created in-process), and talks to the server over TCP like the operator's workstation.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

from ra import create_app
from ra.instance import Instance
from tests.ra.conftest import cipher, db_session, pki  # noqa: F401 - the instance fixtures, reused
from tests.station.proxy import CuttingProxy


@pytest.fixture
def server(pki: Instance) -> Iterator[str]:  # noqa: F811
    """The back-office on 127.0.0.1, in a thread of this process."""
    application = create_app(pki.settings)
    httpd = make_server("127.0.0.1", 0, application, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    application.extensions["guichet"].close()


@pytest.fixture
def proxy(server: str) -> Iterator[CuttingProxy]:
    """A TCP proxy in front of the back-office that can lose an answer on the way back."""
    cutting = CuttingProxy(server)
    yield cutting
    cutting.close()
