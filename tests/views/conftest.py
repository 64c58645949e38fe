"""Fixtures of the views tests: a local HTTP file server with Range support and failure switches, and meshes."""

import http.server
import io
import socket
import threading
from dataclasses import dataclass, field

import numpy as np
import pytest
from PIL import Image

from occ_hf.views import GroundTruthMesh


@dataclass
class ViewServer:
    """State of the test server: files it serves, requests it saw, and failures to inject.

    It implements `GET` and `HEAD` of whole files and `GET` of one `Range: bytes=<start>-[<end>]` (206 with
    `Content-Range`, as S3 answers), and 404 for anything else; not multi-range or conditional requests.
    """

    url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    # Paths whose next full (non-Range) answer announces the whole length but stops halfway, then drops the socket.
    cut_once: set[str] = field(default_factory=set)
    ignore_range: bool = False
    # Paths whose next requests (GET or HEAD) get these statuses (an error page), one each, before being served.
    statuses: dict[str, list[int]] = field(default_factory=dict)

    def requests_for(self, name: str) -> list[str | None]:
        return [byte_range for path, byte_range in self.requests if path == "/" + name]


def _handler(server: ViewServer):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output clean
            pass

        def do_HEAD(self):
            queued = server.statuses.get(self.path.lstrip("/"))
            if queued:
                self.send_error(queued.pop(0))
                return
            body = server.files.get(self.path.lstrip("/"))
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()

        def do_GET(self):
            byte_range = self.headers.get("Range")
            server.requests.append((self.path, byte_range))
            queued = server.statuses.get(self.path.lstrip("/"))
            if queued:
                self.send_error(queued.pop(0))
                return
            body = server.files.get(self.path.lstrip("/"))
            if body is None:
                self.send_error(404)
                return
            start, end = 0, len(body) - 1
            if byte_range and not server.ignore_range:
                first, _, last = byte_range.removeprefix("bytes=").partition("-")
                start, end = int(first), min(int(last) if last else end, end)
                if start >= len(body):
                    self.send_error(416)
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(end + 1 - start))
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            if self.path.lstrip("/") in server.cut_once and not byte_range:
                server.cut_once.discard(self.path.lstrip("/"))
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body[start : end + 1])

    return Handler


@pytest.fixture
def view_server():
    """A `ViewServer` listening on 127.0.0.1 (a free port) for the duration of one test."""
    state = ViewServer()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def silent_server():
    """The URL of a server that accepts connections and never answers: the kernel completes the handshake into the
    listen backlog, and nothing ever reads or replies."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    listener.close()


@pytest.fixture
def refusing_server():
    """The URL of a port where nothing listens (bound, then closed, so no other test takes it meanwhile)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"http://127.0.0.1:{port}/"


def png_bytes(seed: int, size: int = 64) -> bytes:
    """A random RGB PNG (noise, so it does not compress to a few bytes and a cut lands mid-data)."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def synth_samples(synth_split):
    """The 24 samples of the session's generated split."""
    return list(synth_split)


@pytest.fixture(scope="session")
def synth_meshes(synth_samples):
    """The known meshes of those samples, posed with their meta."""
    return [GroundTruthMesh().reconstruct(None, sample) for sample in synth_samples]
