"""The malformed conformance vectors sent to a real omsd over a raw socket.

Each frame goes where its `stage` says (the first frame of a connection for `handshake`, after a
Hello for the others); the answer must be an error body with the vector's code, and the
connection must close, or stay usable (a ping is answered), as `closes` says.
"""

from __future__ import annotations

import socket
from typing import Optional, Tuple

import pytest

from conftest import Omsd
from omsd import wire
from vectors import malformed

MALFORMED = malformed()


def read_frame(sock: socket.socket) -> Optional[Tuple[int, int, int, bytes]]:
    buffer = wire.FrameBuffer()
    while True:
        data = sock.recv(65536)
        if not data:
            return None
        frames = buffer.feed(data)
        if frames:
            assert len(frames) == 1, frames
            return frames[0]


def closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.fixture(scope="module")
def server(omsd_bin):
    server = Omsd(omsd_bin, ["--demo"])
    yield server
    server.close()


@pytest.mark.parametrize("vector", MALFORMED["vectors"], ids=[v["name"] for v in MALFORMED["vectors"]])
def test_server_refuses_malformed_frame(server: Omsd, vector: dict) -> None:
    # The server answers the vector's error code and closes (or keeps) the connection.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        if vector["stage"] != "handshake":
            hello = wire.encode_hello(wire.Hello(client="omsd-python-vectors"))
            sock.sendall(wire.encode_frame(wire.HELLO, 0, hello))
            answer = read_frame(sock)
            assert answer is not None and answer[1] == 0, "hello refused"
        sock.sendall(bytes.fromhex(vector["frame"]))
        answer = read_frame(sock)
        assert answer is not None, "closed without an answer"
        opcode, flags, request_id, payload = answer
        assert flags & wire.FLAG_ERROR
        error = wire.decode_error(payload)
        assert (error.code, error.name) == (vector["error"]["code"], vector["error"]["name"]), error.message
        if vector["stage"] == "frame":
            assert (opcode, request_id) == (0, 0)
        if vector["closes"]:
            assert closed(sock)
        else:
            sock.sendall(wire.encode_frame(wire.PING, 99))
            assert read_frame(sock) == (wire.PING, 0, 99, b"")
