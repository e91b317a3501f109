"""``HubAxisTransport`` on its own: timeouts, streams of unknown size, and a hub that misbehaves
(a loopback socket server that never answers, or serves bytes that do not match their SHA-256)."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from inter_axis.client import HubAxisTransport, HubEndpointSpec
from inter_axis.transport import TransportError, new_idempotency_key
from tests.support.axis_hub import EXAMPLES, GOVERNMENT, PROVINCE, Hub, document_package, new_hub


@contextmanager
def raw_server(answer: bytes | None, seen: list[bytes] | None = None) -> Iterator[str]:
    """Accepts connections, reads the request head (kept in ``seen``), then sends ``answer`` (or
    nothing at all)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        conns = []
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conns.append(conn)
            head = conn.recv(65536)
            if seen is not None:
                seen.append(head)
            if answer is not None:
                conn.sendall(answer)
        for conn in conns:
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def _client(url: str, **spec) -> HubAxisTransport:
    return HubAxisTransport(HubEndpointSpec(endpoint=url, agency_id=PROVINCE, secret="s" * 43, **spec))


def test_a_hub_that_never_answers_times_out_as_unavailable():
    with raw_server(None) as url:
        started = time.monotonic()
        with pytest.raises(TransportError) as info:
            _client(url, read_timeout=0.5).list_received()
        assert info.value.code == "unavailable" and info.value.retryable
        assert "Timeout" in info.value.message
        assert time.monotonic() - started < 10  # bounded by the timeout, not hanging


def test_a_download_that_does_not_match_its_digest_is_refused():
    body = b"<edXML/>"
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: 8\r\n"
        b"X-Content-SHA256: " + hashlib.sha256(b"something else").hexdigest().encode() + b"\r\n\r\n" + body
    )
    with raw_server(answer) as url:
        with pytest.raises(TransportError) as info:
            _client(url).get("abc", io.BytesIO())
    assert info.value.code == "unavailable" and "SHA-256" in info.value.message


def test_an_answer_that_is_not_the_hub_api_is_unavailable():
    answer = b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\noops!"
    with raw_server(answer) as url:
        with pytest.raises(TransportError) as info:
            _client(url).list_agencies()
    assert info.value.code == "unavailable" and "502" in info.value.message


def test_a_missing_package_file_is_invalid_before_anything_is_sent():
    with pytest.raises(TransportError) as info:
        _client("http://127.0.0.1:9").send("/nonexistent/package.edxml", idempotency_key=new_idempotency_key())
    assert info.value.code == "invalid_package"


class _Pipe(io.RawIOBase):
    """A non-seekable stream, like a socket or a pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="shared/standards/examples is not beside the checkout")
def test_a_stream_of_unknown_size_is_sent_whole(tmp_path: Path):
    hub: Hub = new_hub(tmp_path).start()
    try:
        package = document_package(tmp_path / "doc.edxml", attachment_bytes=300_000)
        receipt = hub.client(PROVINCE).send(_Pipe(package.read_bytes()), idempotency_key=new_idempotency_key())
        out = io.BytesIO()
        hub.client(GOVERNMENT).get(receipt.message_id, out)
        assert out.getvalue() == package.read_bytes()
    finally:
        hub.stop()


def _http_answer(body: bytes, content_type: bytes = b"application/vnd.docsvc.axis-batch") -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type + b"\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


@pytest.mark.parametrize(("manifest", "tail", "words"), [
    # The manifest promises 100 bytes; the answer (complete as HTTP goes) carries 10.
    ({"packages": [{"message_id": "a" * 32, "size": 100, "sha256": "0" * 64}]}, b"0123456789", "ended 90 bytes early"),
    # Not the ids asked for.
    ({"packages": [{"message_id": "b" * 32, "size": 1, "sha256": "0" * 64}]}, b"x", "not a package batch"),
    ({"nothing": []}, b"", "not a package batch"),
    # A negative size would read nothing for ever; a size that is no number, a digest that is none.
    ({"packages": [{"message_id": "a" * 32, "size": -1, "sha256": "0" * 64}]}, b"x", "impossible size"),
    ({"packages": [{"message_id": "a" * 32, "size": "1", "sha256": "0" * 64}]}, b"x", "impossible size"),
    ({"packages": [{"message_id": "a" * 32, "size": 1}]}, b"x", "impossible size"),
    # Bytes after the last package: the framing is not what the manifest says.
    ({"packages": [{"message_id": "a" * 32, "size": 1,
                    "sha256": "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"}]}, b"xy",
     "goes on after its last package"),
])
def test_a_get_many_answer_that_breaks_its_framing_is_unavailable(tmp_path: Path, manifest: dict, tail: bytes,
                                                                  words: str):
    import json

    with raw_server(_http_answer(json.dumps(manifest).encode() + b"\n" + tail)) as url:
        with pytest.raises(TransportError) as info:
            _client(url).get_many(["a" * 32], tmp_path)
    assert info.value.code == "unavailable" and words in info.value.message
    assert list(tmp_path.iterdir()) == []  # no partial file left behind


def test_get_many_asks_for_an_id_its_batch_route_does_not_take_alone_and_names_its_file_safely(tmp_path: Path):
    # Another axis's ids may hold dots or slashes: the package is still fetched (never a not_found
    # the hub did not say), and the file stays inside the directory.
    body = b"<edXML/>"
    answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nX-Content-SHA256: "
              + hashlib.sha256(body).hexdigest().encode() + b"\r\nContent-Length: 8\r\n\r\n" + body)
    seen: list[bytes] = []
    with raw_server(answer, seen) as url:
        (path,) = _client(url).get_many(["vnpt.2026:../x"], tmp_path / "in")
    assert seen[0].startswith(b"GET /v1/messages/vnpt.2026:../x/content ")
    assert path.parent == tmp_path / "in" and path.read_bytes() == body
    assert [p.name for p in (tmp_path / "in").iterdir()] == [path.name]


def test_a_send_many_answer_with_the_wrong_number_of_outcomes_is_unavailable():
    with raw_server(_http_answer(b'{"results": []}', b"application/json")) as url:
        with pytest.raises(TransportError) as info:
            _client(url).send_many([(io.BytesIO(b"<edXML/>"), new_idempotency_key())])
    assert info.value.code == "unavailable" and "0 outcomes for 1" in info.value.message
