"""The conformance vectors (protocol/vectors/) byte for byte, without a server.

Each valid vector is decoded with this client's decoder and compared with its meaning, and its
meaning is encoded with this client's encoder and compared with the frame's bytes (for JSON
bodies, the values are compared, as the vectors' README asks). Each malformed frame must be
refused by the decoder with the code the server answers it with; tests/test_server_vectors.py
sends the same frames to a real omsd.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from omsd import wire
from vectors import REPO, encode_payload, malformed, meaning_of, valid_vectors

VALID = list(valid_vectors())


@pytest.mark.parametrize("vector", [v for _, v in VALID], ids=[name for name, _ in VALID])
def test_decode_matches_meaning(vector: dict) -> None:
    # Decode the frame as the receiving side would, then compare the message with the meaning.
    frame = bytes.fromhex(vector["frame"])
    if vector["direction"] == "request":
        header, message = wire.decode_request(frame)
    else:
        header, message = wire.decode_response(frame)
    assert (header.opcode, header.flags, header.request_id) == (
        vector["opcode"],
        vector["flags"],
        int(vector["request_id"]),
    )
    assert meaning_of(vector["layout"], message) == vector["meaning"]


@pytest.mark.parametrize("vector", [v for _, v in VALID], ids=[name for name, _ in VALID])
def test_encode_matches_frame(vector: dict) -> None:
    # Encode the meaning and frame it with the vector's header: the bytes must be the vector's.
    payload = encode_payload(vector["layout"], vector["meaning"])
    frame = wire.encode_frame(vector["opcode"], int(vector["request_id"]), payload, vector["flags"])
    if vector["layout"] == "json":
        expected = bytes.fromhex(vector["frame"])
        assert frame[4:16] == expected[4:16], "header after len"
        assert json.loads(frame[16:]) == json.loads(expected[16:]) == vector["meaning"]["body"]
    else:
        assert frame.hex() == vector["frame"]


def test_every_binary_layout_has_a_vector() -> None:
    # The runner above must see every layout of the document at least once, in its direction.
    seen = {(v["direction"], v["layout"]) for _, v in VALID}
    for needed in [
        ("request", "hello"),
        ("response", "hello_ok"),
        ("request", "empty"),
        ("response", "empty"),
        ("request", "reserve"),
        ("response", "reserved"),
        ("request", "reserve_batch"),
        ("response", "batch_result"),
        ("request", "reservation_id"),
        ("request", "stock_query"),
        ("response", "stock"),
        ("response", "reservation"),
        ("response", "error"),
        ("request", "subscribe"),
        ("response", "log_records"),
        ("response", "snapshot_chunk"),
        ("request", "replica_ack"),
        ("request", "json"),
        ("response", "json"),
    ]:
        assert needed in seen, needed


MALFORMED = malformed()
LIMITS = MALFORMED["limits"]


def _refusal(frame: bytes, stage: str) -> wire.WireFormatError:
    with pytest.raises(wire.WireFormatError) as refused:
        if stage == "frame":
            # Judged from the length field alone: the frame may be only its first bytes.
            wire.check_frame_length(int.from_bytes(frame[:4], "little"), LIMITS["max_frame_bytes"])
        else:
            wire.decode_request(
                frame,
                max_frame_bytes=LIMITS["max_frame_bytes"],
                max_lines=LIMITS["max_lines"],
                max_batch=LIMITS["max_batch"],
            )
    return refused.value


# JSON bodies that parse but name a field or type the operation does not have: only the server
# knows each operation's fields, so these are checked against a real omsd only.
def _schema_refusal(vector: dict) -> bool:
    frame = bytes.fromhex(vector["frame"])
    opcode = int.from_bytes(frame[4:6], "little")
    if vector["stage"] != "payload" or wire.OPCODES.get(opcode, ("", ""))[1] != "json":
        return False
    try:
        json.loads(frame[16:].decode("utf-8"))
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("vector", MALFORMED["vectors"], ids=[v["name"] for v in MALFORMED["vectors"]])
def test_malformed_is_refused_with_the_servers_code(vector: dict) -> None:
    # The decoder refuses the frame with the same code the server answers it with.
    frame = bytes.fromhex(vector["frame"])
    if _schema_refusal(vector):
        # Still check what a client can: the header is sound and the body is a JSON document.
        header, body = wire.decode_request(frame)
        assert header.flags == 0 and body is not None
        return
    error = _refusal(frame, vector["stage"])
    assert (error.code, error.name) == (vector["error"]["code"], vector["error"]["name"]), str(error)
    assert vector["closes"] == (vector["stage"] in ("frame", "handshake"))


def test_generated_tables_match_protocol_md() -> None:
    # clients/codegen.py --check: the opcode, status, role and error tables of both clients are
    # exactly what docs/PROTOCOL.md gives.
    result = subprocess.run(
        [sys.executable, str(REPO / "clients" / "codegen.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
