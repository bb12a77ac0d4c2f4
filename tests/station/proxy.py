"""A tiny HTTP proxy for failure tests: it forwards each request to the real back-office, reads
the whole answer, and for the requests it is told to cut, closes the station's connection
instead of passing the answer on — the network failing after the server did its work."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Exchange:
    request_line: str
    body: bytes
    cut: bool


@dataclass
class CuttingProxy:
    upstream: str
    cut_next: list[str] = field(default_factory=list)  # request-line fragments; each cuts one answer
    exchanges: list[Exchange] = field(default_factory=list)

    def __post_init__(self) -> None:
        parts = urlsplit(self.upstream)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Lock()
        self._open = True
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def close(self) -> None:
        self._open = False
        self._listener.close()

    def _serve(self) -> None:
        while self._open:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _should_cut(self, request_line: str) -> bool:
        with self._lock:
            for fragment in self.cut_next:
                if fragment in request_line:
                    self.cut_next.remove(fragment)
                    return True
        return False

    def _handle(self, client: socket.socket) -> None:
        with client:
            client.settimeout(30)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(65536)
                if not chunk:
                    return
                head += chunk
            header, _, body = head.partition(b"\r\n\r\n")
            length = 0
            for line in header.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            while len(body) < length:
                body += client.recv(65536)
            request_line = header.split(b"\r\n", 1)[0].decode("latin-1")
            cut = self._should_cut(request_line)
            with self._lock:
                self.exchanges.append(Exchange(request_line, body, cut))
            answer = self._forward(header + b"\r\n\r\n" + body)
            if cut:
                client.shutdown(socket.SHUT_RDWR)  # the server answered; the station never hears it
                return
            client.sendall(answer)

    def _forward(self, request: bytes) -> bytes:
        with socket.create_connection(self._target, timeout=120) as upstream:
            upstream.sendall(request)
            answer = b""
            while chunk := upstream.recv(65536):
                answer += chunk
        return answer
