"""Resumable verified downloads against a local HTTP server that honours (or ignores) Range."""

import hashlib
import http.server
import threading

import pytest

from stk_nmt.data.download import Archive, download, obtain, verify

PAYLOAD = bytes(range(256)) * 4000  # ~1 MB


class Handler(http.server.BaseHTTPRequestHandler):
    honour_range = True
    requests: list = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        range_header = self.headers.get("Range")
        type(self).requests.append(range_header)
        start = 0
        if range_header and self.honour_range:
            start = int(range_header.split("=")[1].rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Handler.requests = []
    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/de-en.tgz"
    httpd.shutdown()
    Handler.honour_range = True


SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_resumes_a_partial_download_with_range(server, tmp_path):
    dest = tmp_path / "de-en.tgz"
    (tmp_path / "de-en.tgz.part").write_bytes(PAYLOAD[:300_000])
    download(server, dest, sha256=SHA)
    assert Handler.requests == ["bytes=300000-"]
    assert dest.read_bytes() == PAYLOAD
    assert (tmp_path / "de-en.tgz.sha256").read_text().split()[0] == SHA
    download(server, dest, sha256=SHA)  # complete: re-used after verification, no request
    assert len(Handler.requests) == 1


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    Handler.honour_range = False
    dest = tmp_path / "de-en.tgz"
    (tmp_path / "de-en.tgz.part").write_bytes(b"garbage")
    download(server, dest)
    assert dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_and_later_corruption_are_caught(server, tmp_path):
    with pytest.raises(ValueError, match="corrupt"):
        download(server, tmp_path / "a.tgz", sha256="0" * 64)
    dest = download(server, tmp_path / "b.tgz")
    dest.write_bytes(PAYLOAD[:-1])  # truncated after the download was recorded
    with pytest.raises(ValueError, match="changed since it was downloaded"):
        verify(dest)


def test_local_archive_checks(tmp_path):
    archive = Archive("de-en.tgz", "http://unused.invalid/de-en.tgz", sha256=SHA)
    with pytest.raises(FileNotFoundError, match="de-en.tgz"):
        obtain(archive, tmp_path / "de-en.tgz", tmp_path)
    (tmp_path / "de-en.tgz").write_bytes(PAYLOAD)
    assert obtain(archive, tmp_path, tmp_path) == tmp_path / "de-en.tgz"  # a directory works too
    (tmp_path / "de-en.tgz").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        obtain(archive, tmp_path / "de-en.tgz", tmp_path)
