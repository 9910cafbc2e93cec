"""The omsd wire protocol, version 2: frames and every binary layout, both directions.

docs/PROTOCOL.md is the contract; section numbers below refer to it. This module does no I/O:
it turns messages into bytes and bytes into messages, and refuses malformed input with a
`WireFormatError` carrying the error code a server answers it with. The client encodes requests
and decodes responses; the other directions exist so the conformance vectors
(`protocol/vectors/`) can be checked both ways.

Integers are little-endian, with no padding; `str` is `u16 length + UTF-8`, arrays are
`u16 count + items`; `opt_u32`/`opt_u64` are a presence byte and a value that is zero when absent.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any, Iterable, List, Optional, Sequence, Tuple, Union

from ._tables import OPCODES, ROLES, STATUSES

MAGIC = b"OMS2"
VERSION = 2
#: bytes of the frame header: u32 len, u16 opcode, u16 flags, u64 request_id
HEADER_BYTES = 16
#: `len` counts the header after itself: opcode, flags, request id
HEADER_AFTER_LEN = 12
#: response flag: the payload is an error body
FLAG_ERROR = 0x0001
#: the server's request frame limit unless its HelloOk says otherwise
DEFAULT_MAX_FRAME_BYTES = 1 << 20
#: response frames (exports, audits, order lists) may exceed max_frame_bytes; clients accept this much
MAX_RESPONSE_FRAME_BYTES = 64 << 20
DEFAULT_MAX_LINES = 64
DEFAULT_MAX_BATCH = 1024
CODE_MAX_BYTES = 64
IDEMPOTENCY_KEY_MAX_BYTES = 128
HELLO_STRING_MAX_BYTES = 256
STR_MAX_BYTES = 0xFFFF
U16_MAX = 0xFFFF
U32_MAX = 0xFFFF_FFFF
U64_MAX = 0xFFFF_FFFF_FFFF_FFFF

# Opcodes of the binary layouts (section 4); the JSON ones are looked up by name in OPCODES.
HELLO = 1
PING = 2
RESERVE = 10
RESERVE_BATCH = 11
CONFIRM = 12
RELEASE = 13
PAY_BALANCE = 14
SHIP = 15
GET_STOCK = 20
GET_RESERVATION = 21
SUBSCRIBE = 40
REPLICA_ACK = 42
#: opcodes whose request payload is `reservation_id` (section 5.4, 5.6)
RESERVATION_ID_OPCODES = (CONFIRM, RELEASE, PAY_BALANCE, SHIP, GET_RESERVATION)

#: sales channels by name (section 5.2); other numbers are configured per server
CHANNELS = {"own": 0, "taobao": 1, "jd": 2, "douyin": 3}
#: role names by tag, and back
ROLE_TAGS = {name: tag for tag, name in ROLES.items()}
STATUS_NUMBERS = {name: number for number, name in STATUSES.items()}
OPCODE_NUMBERS = {name: number for number, (name, _) in OPCODES.items()}

# Wire error codes the decoders refuse with (section 6).
BAD_FRAME = 1
UNSUPPORTED_VERSION = 2
FRAME_TOO_LARGE = 6
BAD_REQUEST = 11
UNKNOWN_OPCODE = 12
BATCH_TOO_LARGE = 15
TOO_MANY_LINES = 106
INVALID_CODE = 128
_CODE_NAMES = {
    BAD_FRAME: "bad_frame",
    UNSUPPORTED_VERSION: "unsupported_version",
    FRAME_TOO_LARGE: "frame_too_large",
    BAD_REQUEST: "bad_request",
    UNKNOWN_OPCODE: "unknown_opcode",
    BATCH_TOO_LARGE: "batch_too_large",
    TOO_MANY_LINES: "too_many_lines",
    INVALID_CODE: "invalid_code",
}

_HEADER = struct.Struct("<IHHQ")
_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_OPT_U32 = struct.Struct("<BI")
_OPT_U64 = struct.Struct("<BQ")
# reserve head: ttl_ms, customer, channel, campaign (opt_u32)
_RESERVE_HEAD = struct.Struct("<QQHBI")
# reserved head: id, expires_at_ms, promise_ms (opt_u64), replayed
_RESERVED_HEAD = struct.Struct("<QQBQB")
# allocation head: sku_id, warehouse_id, qty
_ALLOCATION_HEAD = struct.Struct("<IHI")
# a line by code: qty, sku kind 0, code length
_LINE_CODE_HEAD = struct.Struct("<IBH")
# error body head: code, available (opt_u64), sku_id (opt_u32)
_ERROR_HEAD = struct.Struct("<HBQBI")
# hello head: magic, version, features
_HELLO_HEAD = struct.Struct("<4sHI")
# hello_ok head: version, role, reserved, partitions, max_frame_bytes, max_lines, max_in_flight,
# max_batch, features
_HELLO_OK_HEAD = struct.Struct("<HBBIIIIII")
# stock head: sku_id, on_hand, reserved, pooled, unavailable, available, incoming
_STOCK_HEAD = struct.Struct("<IQQQQQQ")
_KIT_HEAD = struct.Struct("<II")
# warehouse stock head: warehouse_id, on_hand, reserved, pooled, safety, damaged, qc, available
_WAREHOUSE_HEAD = struct.Struct("<HQQQQQQQ")
# reservation head: id, customer, created, expires, promise (opt_u64), campaign (opt_u32),
# presale_outstanding, channel, status
_RESERVATION_HEAD = struct.Struct("<QQQQBQBIIHB")
_SUBSCRIBE = struct.Struct("<QBIB")
_REPLICA_ACK = struct.Struct("<IQ")
_LOG_RECORDS_HEAD = struct.Struct("<IQI")
_LOG_RECORD_HEAD = struct.Struct("<QBI")
_SNAPSHOT_HEAD = struct.Struct("<IQQQI")


class WireFormatError(ValueError):
    """Bytes that do not follow the protocol; `code`/`name` is the error a server answers with."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.name = _CODE_NAMES.get(code, str(code))
        self.message = message

    def __str__(self) -> str:
        return f"{self.name} ({self.code}): {self.message}"


def _bad_request(message: str) -> WireFormatError:
    return WireFormatError(BAD_REQUEST, message)


# ---------------------------------------------------------------------------------------------
# Messages


SkuRef = Union[str, int]
"""A SKU named by code (`str`, 1..=64 bytes of UTF-8) or by the server's id (`int`)."""


@dataclass
class Hello:
    """Section 3: the first frame of a connection."""

    api_key: str = ""
    client: str = ""
    version: int = VERSION
    features: int = 0
    magic: bytes = MAGIC


@dataclass
class HelloOk:
    """Section 3: the server's answer to Hello, with the limits of this connection."""

    version: int
    role: str
    partitions: int
    max_frame_bytes: int
    max_lines: int
    max_in_flight: int
    max_batch: int
    features: int
    server: str


@dataclass
class ReserveRequest:
    """Section 5.2: a cart to hold. `lines` are `(sku, qty)` with sku a code (str) or id (int)."""

    ttl_ms: int
    lines: List[Tuple[SkuRef, int]]
    customer: int = 0
    channel: int = 0
    campaign: Optional[int] = None
    idempotency_key: str = ""


@dataclass
class Allocation:
    """Units of one SKU held in one warehouse."""

    sku: str
    warehouse: str
    qty: int
    sku_id: int
    warehouse_id: int


@dataclass
class Reserved:
    """Section 5.2: a reservation made (or, with `replayed`, made earlier with the same key)."""

    id: int
    expires_at_ms: int
    allocations: List[Allocation]
    promise_ms: Optional[int] = None
    replayed: bool = False


@dataclass
class ErrorBody:
    """Section 6: a refusal as it travels; the client raises it as an `omsd.OmsdError` subclass."""

    code: int
    name: str
    message: str
    available: Optional[int] = None
    sku_id: Optional[int] = None
    sku: Optional[str] = None
    warehouse: Optional[str] = None


@dataclass
class KitComponent:
    sku: str
    sku_id: int
    qty: int


@dataclass
class WarehouseStock:
    warehouse: str
    warehouse_id: int
    on_hand: int
    reserved: int
    pooled: int
    safety: int
    damaged: int
    quality_control: int
    available: int


@dataclass
class Stock:
    """Section 5.5: one SKU's stock over every warehouse, and per warehouse."""

    sku: str
    sku_id: int
    on_hand: int
    reserved: int
    pooled: int
    unavailable: int
    available: int
    incoming: int
    kit: List[KitComponent] = field(default_factory=list)
    warehouses: List[WarehouseStock] = field(default_factory=list)


@dataclass
class ReservationPart:
    partition: int
    status: str
    allocations: List[Allocation]


@dataclass
class Reservation:
    """Section 5.6: a reservation's state. `status` is the status name ("held", "confirmed", ...)."""

    id: int
    customer: int
    created_at_ms: int
    expires_at_ms: int
    promise_ms: Optional[int]
    campaign: Optional[int]
    presale_outstanding: int
    channel: int
    status: str
    allocations: List[Allocation]
    parts: List[ReservationPart] = field(default_factory=list)


@dataclass
class Subscribe:
    """Section 8: follow the log from `from_lsn`."""

    from_lsn: int = 0
    partition: Optional[int] = None
    bootstrap: bool = False


@dataclass
class ReplicaAck:
    partition: int
    durable_lsn: int


@dataclass
class LogRecord:
    lsn: int
    record_type: int
    payload: bytes


@dataclass
class LogRecords:
    """Section 8, stream frame kind 1: consecutive durable records (none: a heartbeat)."""

    partition: int
    durable_lsn: int
    records: List[LogRecord]


@dataclass
class SnapshotChunk:
    """Section 8, stream frame kind 2: part of a partition's image."""

    partition: int
    lsn: int
    offset: int
    total: int
    data: bytes


BatchItem = Union[Reserved, ErrorBody]


# ---------------------------------------------------------------------------------------------
# Writing


def _check_int(value: int, maximum: int, what: str) -> int:
    if type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{what} must be an integer, not {type(value).__name__}")
        value = int(value)
    if value < 0 or value > maximum:
        raise ValueError(f"{what} {value} is out of range 0..={maximum}")
    return value


def _put_str(out: bytearray, text: str, what: str, max_bytes: int = STR_MAX_BYTES) -> None:
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str, not {type(text).__name__}")
    raw = text.encode("utf-8")
    if len(raw) > max_bytes:
        raise ValueError(f"{what} is {len(raw)} bytes of UTF-8; the most is {max_bytes}")
    out += _U16.pack(len(raw))
    out += raw


def _put_bytes(out: bytearray, data: bytes) -> None:
    out += _U32.pack(len(data))
    out += data


def _put_opt_u32(out: bytearray, value: Optional[int], what: str) -> None:
    out += _OPT_U32.pack(0, 0) if value is None else _OPT_U32.pack(1, _check_int(value, U32_MAX, what))


def _put_opt_u64(out: bytearray, value: Optional[int], what: str) -> None:
    out += _OPT_U64.pack(0, 0) if value is None else _OPT_U64.pack(1, _check_int(value, U64_MAX, what))


def _put_count(out: bytearray, count: int, what: str) -> None:
    if count > U16_MAX:
        raise ValueError(f"{count} {what} do not fit a u16 count")
    out += _U16.pack(count)


def _put_sku_ref(out: bytearray, sku: SkuRef) -> None:
    if isinstance(sku, str):
        raw = sku.encode("utf-8")
        if len(raw) > STR_MAX_BYTES:
            raise ValueError(f"SKU code is {len(raw)} bytes; the most is {CODE_MAX_BYTES}")
        out += b"\x00"
        out += _U16.pack(len(raw))
        out += raw
    elif isinstance(sku, int) and not isinstance(sku, bool):
        out += b"\x01"
        out += _U32.pack(_check_int(sku, U32_MAX, "SKU id"))
    else:
        raise TypeError(f"a SKU is a code (str) or an id (int), not {type(sku).__name__}")


def pack_header(frame: bytearray, opcode: int, request_id: int, flags: int = 0) -> None:
    """Fill the 16 header bytes at the start of `frame` (payload written after them)."""
    _HEADER.pack_into(frame, 0, len(frame) - 4, opcode, flags, request_id)


def encode_frame(opcode: int, request_id: int, payload: bytes = b"", flags: int = 0) -> bytes:
    """A whole frame: the 16-byte header (section 2) then the payload."""
    return _HEADER.pack(HEADER_AFTER_LEN + len(payload), opcode, flags, request_id) + payload


def encode_hello(hello: Hello) -> bytes:
    out = bytearray(_HELLO_HEAD.pack(hello.magic, hello.version, hello.features))
    _put_str(out, hello.api_key, "API key", HELLO_STRING_MAX_BYTES)
    _put_str(out, hello.client, "client name", HELLO_STRING_MAX_BYTES)
    return bytes(out)


def put_reserve(
    out: bytearray,
    ttl_ms: int,
    lines: Iterable[Tuple[SkuRef, int]],
    customer: int = 0,
    channel: int = 0,
    campaign: Optional[int] = None,
    idempotency_key: str = "",
) -> None:
    """Append a `reserve` body (section 5.2). The hot path of both clients: struct checks ranges."""
    try:
        if campaign is None:
            out += _RESERVE_HEAD.pack(ttl_ms, customer, channel, 0, 0)
        else:
            out += _RESERVE_HEAD.pack(ttl_ms, customer, channel, 1, campaign)
    except struct.error:
        _check_int(ttl_ms, U64_MAX, "ttl_ms")
        _check_int(customer, U64_MAX, "customer")
        _check_int(channel, U16_MAX, "channel")
        _check_int(campaign or 0, U32_MAX, "campaign")
        raise
    _put_str(out, idempotency_key, "idempotency key")
    count_at = len(out)
    out += b"\x00\x00"
    count = 0
    for item in lines:
        try:
            sku, qty = item
        except (TypeError, ValueError):
            raise TypeError(f"a line is a (sku, qty) pair, not {item!r}") from None
        if type(sku) is str:
            raw = sku.encode("utf-8")
            try:
                out += _LINE_CODE_HEAD.pack(qty, 0, len(raw))
            except struct.error:
                _check_int(qty, U32_MAX, "qty")
                raise ValueError(f"SKU code is {len(raw)} bytes; the most is {CODE_MAX_BYTES}") from None
            out += raw
        else:
            out += _U32.pack(_check_int(qty, U32_MAX, "qty"))
            _put_sku_ref(out, sku)
        count += 1
    if count > U16_MAX:
        raise ValueError(f"{count} lines do not fit a u16 count")
    _U16.pack_into(out, count_at, count)


def _put_reserve(out: bytearray, request: ReserveRequest) -> None:
    put_reserve(
        out,
        request.ttl_ms,
        request.lines,
        request.customer,
        request.channel,
        request.campaign,
        request.idempotency_key,
    )


def encode_reserve(request: ReserveRequest) -> bytes:
    out = bytearray()
    _put_reserve(out, request)
    return bytes(out)


def encode_reserve_batch(carts: Sequence[ReserveRequest]) -> bytes:
    out = bytearray()
    _put_count(out, len(carts), "reservations")
    for cart in carts:
        _put_reserve(out, cart)
    return bytes(out)


def encode_reservation_id(reservation_id: int) -> bytes:
    return _U64.pack(_check_int(reservation_id, U64_MAX, "reservation id"))


def encode_stock_query(sku: SkuRef) -> bytes:
    out = bytearray()
    _put_sku_ref(out, sku)
    return bytes(out)


def encode_subscribe(subscribe: Subscribe) -> bytes:
    partition = subscribe.partition
    return _SUBSCRIBE.pack(
        _check_int(subscribe.from_lsn, U64_MAX, "from_lsn"),
        0 if partition is None else 1,
        0 if partition is None else _check_int(partition, U32_MAX, "partition"),
        1 if subscribe.bootstrap else 0,
    )


def encode_replica_ack(ack: ReplicaAck) -> bytes:
    return _REPLICA_ACK.pack(ack.partition, ack.durable_lsn)


def encode_json(body: Any) -> bytes:
    """A JSON-bodied payload (section 7): one UTF-8 JSON document."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encode_hello_ok(ok: HelloOk) -> bytes:
    out = bytearray(
        _HELLO_OK_HEAD.pack(
            ok.version,
            ROLE_TAGS[ok.role],
            0,
            ok.partitions,
            ok.max_frame_bytes,
            ok.max_lines,
            ok.max_in_flight,
            ok.max_batch,
            ok.features,
        )
    )
    _put_str(out, ok.server, "server")
    return bytes(out)


def _put_allocations(out: bytearray, allocations: Sequence[Allocation]) -> None:
    _put_count(out, len(allocations), "allocations")
    for a in allocations:
        out += _ALLOCATION_HEAD.pack(a.sku_id, a.warehouse_id, a.qty)
        _put_str(out, a.sku, "sku")
        _put_str(out, a.warehouse, "warehouse")


def _put_reserved(out: bytearray, reserved: Reserved) -> None:
    promise = reserved.promise_ms
    out += _RESERVED_HEAD.pack(
        reserved.id,
        reserved.expires_at_ms,
        0 if promise is None else 1,
        0 if promise is None else promise,
        1 if reserved.replayed else 0,
    )
    _put_allocations(out, reserved.allocations)


def encode_reserved(reserved: Reserved) -> bytes:
    out = bytearray()
    _put_reserved(out, reserved)
    return bytes(out)


def _put_error(out: bytearray, error: ErrorBody) -> None:
    out += _ERROR_HEAD.pack(
        error.code,
        0 if error.available is None else 1,
        0 if error.available is None else error.available,
        0 if error.sku_id is None else 1,
        0 if error.sku_id is None else error.sku_id,
    )
    _put_str(out, error.name, "name")
    _put_str(out, error.message, "message")
    _put_str(out, error.sku or "", "sku")
    _put_str(out, error.warehouse or "", "warehouse")


def encode_error(error: ErrorBody) -> bytes:
    out = bytearray()
    _put_error(out, error)
    return bytes(out)


def encode_batch_result(items: Sequence[BatchItem]) -> bytes:
    out = bytearray()
    _put_count(out, len(items), "items")
    for item in items:
        if isinstance(item, Reserved):
            out += b"\x00"
            _put_reserved(out, item)
        else:
            out += b"\x01"
            _put_error(out, item)
    return bytes(out)


def encode_stock(stock: Stock) -> bytes:
    out = bytearray(
        _STOCK_HEAD.pack(
            stock.sku_id,
            stock.on_hand,
            stock.reserved,
            stock.pooled,
            stock.unavailable,
            stock.available,
            stock.incoming,
        )
    )
    _put_str(out, stock.sku, "sku")
    _put_count(out, len(stock.kit), "kit components")
    for c in stock.kit:
        out += _KIT_HEAD.pack(c.qty, c.sku_id)
        _put_str(out, c.sku, "sku")
    _put_count(out, len(stock.warehouses), "warehouses")
    for w in stock.warehouses:
        out += _WAREHOUSE_HEAD.pack(
            w.warehouse_id, w.on_hand, w.reserved, w.pooled, w.safety, w.damaged, w.quality_control, w.available
        )
        _put_str(out, w.warehouse, "warehouse")
    return bytes(out)


def encode_reservation(r: Reservation) -> bytes:
    out = bytearray(
        _RESERVATION_HEAD.pack(
            r.id,
            r.customer,
            r.created_at_ms,
            r.expires_at_ms,
            0 if r.promise_ms is None else 1,
            0 if r.promise_ms is None else r.promise_ms,
            0 if r.campaign is None else 1,
            0 if r.campaign is None else r.campaign,
            r.presale_outstanding,
            r.channel,
            STATUS_NUMBERS[r.status],
        )
    )
    _put_allocations(out, r.allocations)
    _put_count(out, len(r.parts), "parts")
    for part in r.parts:
        out += _U32.pack(part.partition) + _U8.pack(STATUS_NUMBERS[part.status])
        _put_allocations(out, part.allocations)
    return bytes(out)


def encode_log_records(frame: LogRecords) -> bytes:
    out = bytearray(b"\x01")
    out += _LOG_RECORDS_HEAD.pack(frame.partition, frame.durable_lsn, len(frame.records))
    for record in frame.records:
        out += _U64.pack(record.lsn) + _U8.pack(record.record_type)
        _put_bytes(out, record.payload)
    return bytes(out)


def encode_snapshot_chunk(chunk: SnapshotChunk) -> bytes:
    out = bytearray(b"\x02")
    out += _U32.pack(chunk.partition) + _U64.pack(chunk.lsn) + _U64.pack(chunk.offset) + _U64.pack(chunk.total)
    _put_bytes(out, chunk.data)
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Reading


class _Reader:
    """Reads one payload front to back; every read checks the bytes are there first."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, pos: int = 0, end: Optional[int] = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def take(self, st: struct.Struct, what: str) -> tuple:
        pos = self.pos
        if pos + st.size > self.end:
            raise _bad_request(f"payload ends inside {what}")
        self.pos = pos + st.size
        return st.unpack_from(self.data, pos)

    def u8(self, what: str) -> int:
        return self.take(_U8, what)[0]

    def u16(self, what: str) -> int:
        return self.take(_U16, what)[0]

    def u32(self, what: str) -> int:
        return self.take(_U32, what)[0]

    def u64(self, what: str) -> int:
        return self.take(_U64, what)[0]

    def raw(self, n: int, what: str) -> bytes:
        pos = self.pos
        if pos + n > self.end:
            raise _bad_request(f"payload ends inside {what}")
        self.pos = pos + n
        return bytes(self.data[pos : pos + n])

    def text(self, what: str, max_bytes: int = STR_MAX_BYTES, too_long_code: int = BAD_REQUEST) -> str:
        n = self.u16(f"{what} length")
        if n > max_bytes:
            raise WireFormatError(too_long_code, f"{what} is {n} bytes; the most is {max_bytes}")
        raw = self.raw(n, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _bad_request(f"{what} is not valid UTF-8") from None

    def blob(self, what: str) -> bytes:
        n = self.u32(f"{what} length")
        return self.raw(n, what)

    def boolean(self, what: str) -> bool:
        value = self.u8(what)
        if value > 1:
            raise _bad_request(f"{what} is {value}, not a bool (0 or 1)")
        return value == 1

    def presence(self, present: int, value: int, what: str) -> Optional[int]:
        if present == 0:
            if value != 0:
                raise _bad_request(f"{what} is absent but its value bytes are not zero")
            return None
        if present != 1:
            raise _bad_request(f"{what} presence byte is {present}, not 0 or 1")
        return value

    def sku_ref(self) -> SkuRef:
        kind = self.u8("sku kind")
        if kind == 0:
            n = self.u16("SKU code length")
            if n == 0 or n > CODE_MAX_BYTES:
                raise WireFormatError(INVALID_CODE, f"a SKU code is 1..={CODE_MAX_BYTES} bytes, not {n}")
            raw = self.raw(n, "SKU code")
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                raise _bad_request("SKU code is not valid UTF-8") from None
        if kind == 1:
            return self.u32("SKU id")
        raise _bad_request(f"sku kind {kind} is neither 0 (code) nor 1 (id)")

    def done(self) -> None:
        if self.pos != self.end:
            raise _bad_request(f"{self.end - self.pos} bytes left over after the message")


def _status_name(number: int) -> str:
    # Statuses are only ever added (section 12): a newer server's status still reads.
    return STATUSES.get(number, f"status_{number}")


def decode_hello(payload: bytes) -> Hello:
    r = _Reader(payload)
    if len(payload) >= 4 and bytes(payload[:4]) != MAGIC:
        raise WireFormatError(BAD_FRAME, f"hello magic is {bytes(payload[:4])!r}, not {MAGIC!r}")
    magic, version, features = r.take(_HELLO_HEAD, "hello")
    if version != VERSION:
        raise WireFormatError(
            UNSUPPORTED_VERSION, f"protocol version {version} is not supported; this client speaks {VERSION}"
        )
    api_key = r.text("API key", HELLO_STRING_MAX_BYTES)
    client = r.text("client name", HELLO_STRING_MAX_BYTES)
    r.done()
    return Hello(api_key=api_key, client=client, version=version, features=features, magic=magic)


def _read_reserve(r: _Reader, max_lines: int) -> ReserveRequest:
    ttl_ms, customer, channel, present, campaign = r.take(_RESERVE_HEAD, "reserve head")
    campaign_value = r.presence(present, campaign, "campaign")
    key = r.text("idempotency key", IDEMPOTENCY_KEY_MAX_BYTES)
    count = r.u16("line count")
    if count > max_lines:
        raise WireFormatError(TOO_MANY_LINES, f"{count} lines; the most is {max_lines}")
    lines: List[Tuple[SkuRef, int]] = []
    for _ in range(count):
        qty = r.u32("line qty")
        lines.append((r.sku_ref(), qty))
    return ReserveRequest(
        ttl_ms=ttl_ms,
        lines=lines,
        customer=customer,
        channel=channel,
        campaign=campaign_value,
        idempotency_key=key,
    )


def decode_reserve(payload: bytes, max_lines: int = DEFAULT_MAX_LINES) -> ReserveRequest:
    r = _Reader(payload)
    request = _read_reserve(r, max_lines)
    r.done()
    return request


def decode_reserve_batch(
    payload: bytes, max_lines: int = DEFAULT_MAX_LINES, max_batch: int = DEFAULT_MAX_BATCH
) -> List[ReserveRequest]:
    r = _Reader(payload)
    count = r.u16("batch count")
    if count == 0:
        raise _bad_request("a batch holds at least one reservation")
    if count > max_batch:
        raise WireFormatError(BATCH_TOO_LARGE, f"{count} reservations in a batch; the most is {max_batch}")
    carts = [_read_reserve(r, max_lines) for _ in range(count)]
    r.done()
    return carts


def decode_reservation_id(payload: bytes) -> int:
    r = _Reader(payload)
    value = r.u64("reservation id")
    r.done()
    return value


def decode_stock_query(payload: bytes) -> SkuRef:
    r = _Reader(payload)
    sku = r.sku_ref()
    r.done()
    return sku


def decode_subscribe(payload: bytes) -> Subscribe:
    r = _Reader(payload)
    from_lsn = r.u64("from_lsn")
    present, partition = r.take(_OPT_U32, "partition")
    partition_value = r.presence(present, partition, "partition")
    bootstrap = r.boolean("bootstrap")
    r.done()
    return Subscribe(from_lsn=from_lsn, partition=partition_value, bootstrap=bootstrap)


def decode_replica_ack(payload: bytes) -> ReplicaAck:
    r = _Reader(payload)
    partition, durable_lsn = r.take(_REPLICA_ACK, "replica_ack")
    r.done()
    return ReplicaAck(partition=partition, durable_lsn=durable_lsn)


def decode_empty(payload: bytes) -> None:
    if len(payload) != 0:
        raise _bad_request(f"{len(payload)} bytes left over after the message")


def decode_json(payload: bytes) -> Any:
    """A JSON-bodied payload; an empty payload reads as `{}` (section 7)."""
    if len(payload) == 0:
        return {}
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError:
        raise _bad_request("the JSON body is not valid UTF-8") from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise _bad_request(f"the JSON body does not parse: {e}") from None


def decode_hello_ok(payload: bytes) -> HelloOk:
    r = _Reader(payload)
    version, role, _reserved, partitions, max_frame, max_lines, max_in_flight, max_batch, features = r.take(
        _HELLO_OK_HEAD, "hello_ok"
    )
    server = r.text("server")
    r.done()
    return HelloOk(
        version=version,
        role=ROLES.get(role, f"role_{role}"),
        partitions=partitions,
        max_frame_bytes=max_frame,
        max_lines=max_lines,
        max_in_flight=max_in_flight,
        max_batch=max_batch,
        features=features,
        server=server,
    )


def _allocations_at(data: bytes, pos: int, end: int) -> Tuple[List[Allocation], int]:
    """The allocation array at `pos` (the hot path of every reserve answer), and the next position."""
    try:
        (count,) = _U16.unpack_from(data, pos)
        pos += 2
        allocations = []
        unpack = _ALLOCATION_HEAD.unpack_from
        u16 = _U16.unpack_from
        for _ in range(count):
            sku_id, warehouse_id, qty = unpack(data, pos)
            (n,) = u16(data, pos + 10)
            sku = str(data[pos + 12 : pos + 12 + n], "utf-8")
            pos += 12 + n
            (m,) = u16(data, pos)
            warehouse = str(data[pos + 2 : pos + 2 + m], "utf-8")
            pos += 2 + m
            if pos > end:
                raise _bad_request("payload ends inside an allocation")
            allocations.append(Allocation(sku, warehouse, qty, sku_id, warehouse_id))
    except struct.error:
        raise _bad_request("payload ends inside an allocation") from None
    except UnicodeDecodeError:
        raise _bad_request("an allocation code is not valid UTF-8") from None
    return allocations, pos


def _read_allocations(r: _Reader) -> List[Allocation]:
    allocations, r.pos = _allocations_at(r.data, r.pos, r.end)
    return allocations


def _read_reserved(r: _Reader) -> Reserved:
    reservation_id, expires, present, promise, replayed = r.take(_RESERVED_HEAD, "reserved head")
    promise_value = r.presence(present, promise, "promise_ms")
    if replayed > 1:
        raise _bad_request(f"replayed is {replayed}, not a bool")
    return Reserved(reservation_id, expires, _read_allocations(r), promise_value, replayed == 1)


def decode_reserved(payload: bytes) -> Reserved:
    r = _Reader(payload)
    reserved = _read_reserved(r)
    r.done()
    return reserved


def _read_error(r: _Reader) -> ErrorBody:
    code, available_present, available, sku_id_present, sku_id = r.take(_ERROR_HEAD, "error head")
    available_value = r.presence(available_present, available, "available")
    sku_id_value = r.presence(sku_id_present, sku_id, "sku_id")
    name = r.text("error name")
    message = r.text("error message")
    sku = r.text("error sku")
    warehouse = r.text("error warehouse")
    return ErrorBody(code, name, message, available_value, sku_id_value, sku or None, warehouse or None)


def decode_error(payload: bytes) -> ErrorBody:
    r = _Reader(payload)
    error = _read_error(r)
    r.done()
    return error


def decode_batch_result(payload: bytes) -> List[BatchItem]:
    r = _Reader(payload)
    count = r.u16("batch count")
    items: List[BatchItem] = []
    for _ in range(count):
        outcome = r.u8("batch outcome")
        if outcome == 0:
            items.append(_read_reserved(r))
        elif outcome == 1:
            items.append(_read_error(r))
        else:
            raise _bad_request(f"batch outcome {outcome} is neither 0 (reserved) nor 1 (refused)")
    r.done()
    return items


def decode_stock(payload: bytes) -> Stock:
    r = _Reader(payload)
    sku_id, on_hand, reserved, pooled, unavailable, available, incoming = r.take(_STOCK_HEAD, "stock head")
    sku = r.text("sku")
    kit = []
    for _ in range(r.u16("kit count")):
        qty, component_id = r.take(_KIT_HEAD, "kit component")
        kit.append(KitComponent(r.text("kit component sku"), component_id, qty))
    warehouses = []
    for _ in range(r.u16("warehouse count")):
        wid, w_on_hand, w_reserved, w_pooled, safety, damaged, qc, w_available = r.take(
            _WAREHOUSE_HEAD, "warehouse stock"
        )
        code = r.text("warehouse")
        warehouses.append(
            WarehouseStock(code, wid, w_on_hand, w_reserved, w_pooled, safety, damaged, qc, w_available)
        )
    r.done()
    return Stock(sku, sku_id, on_hand, reserved, pooled, unavailable, available, incoming, kit, warehouses)


def decode_reservation(payload: bytes) -> Reservation:
    r = _Reader(payload)
    (
        reservation_id,
        customer,
        created,
        expires,
        promise_present,
        promise,
        campaign_present,
        campaign,
        outstanding,
        channel,
        status,
    ) = r.take(_RESERVATION_HEAD, "reservation head")
    promise_value = r.presence(promise_present, promise, "promise_ms")
    campaign_value = r.presence(campaign_present, campaign, "campaign")
    allocations = _read_allocations(r)
    parts = []
    for _ in range(r.u16("part count")):
        partition = r.u32("part partition")
        part_status = r.u8("part status")
        parts.append(ReservationPart(partition, _status_name(part_status), _read_allocations(r)))
    r.done()
    return Reservation(
        reservation_id,
        customer,
        created,
        expires,
        promise_value,
        campaign_value,
        outstanding,
        channel,
        _status_name(status),
        allocations,
        parts,
    )


def decode_stream_frame(payload: bytes) -> Union[LogRecords, SnapshotChunk]:
    """A subscription stream frame (section 8) that is not an error."""
    r = _Reader(payload)
    kind = r.u8("stream frame kind")
    if kind == 1:
        partition, durable_lsn, count = r.take(_LOG_RECORDS_HEAD, "log_records head")
        records = []
        for _ in range(count):
            # A record is at least 13 bytes: refuse a count the payload cannot hold before looping.
            if r.end - r.pos < _LOG_RECORD_HEAD.size:
                raise _bad_request("payload ends inside a log record")
            lsn = r.u64("record lsn")
            record_type = r.u8("record type")
            records.append(LogRecord(lsn, record_type, r.blob("record payload")))
        r.done()
        return LogRecords(partition, durable_lsn, records)
    if kind == 2:
        partition, lsn, offset, total, n = r.take(_SNAPSHOT_HEAD, "snapshot_chunk head")
        data = r.raw(n, "snapshot data")
        r.done()
        return SnapshotChunk(partition, lsn, offset, total, data)
    raise _bad_request(f"stream frame kind {kind} is neither 1 (log_records) nor 2 (snapshot_chunk)")


# ---------------------------------------------------------------------------------------------
# Frames


@dataclass
class Frame:
    opcode: int
    flags: int
    request_id: int
    payload: bytes

    @property
    def is_error(self) -> bool:
        return bool(self.flags & FLAG_ERROR)


def check_frame_length(length: int, max_frame_bytes: int) -> None:
    """Judge a frame from its `len` field alone (section 2), before reading any payload."""
    if length < HEADER_AFTER_LEN:
        raise WireFormatError(BAD_FRAME, f"frame length {length} is shorter than the 12-byte header")
    if length + 4 > max_frame_bytes:
        raise WireFormatError(
            FRAME_TOO_LARGE, f"frame of {length + 4} bytes exceeds the limit of {max_frame_bytes}"
        )


def split_frame(data: bytes, max_frame_bytes: int = MAX_RESPONSE_FRAME_BYTES) -> Frame:
    """Exactly one whole frame."""
    if len(data) < 4:
        raise WireFormatError(BAD_FRAME, "a frame starts with 4 length bytes")
    (length,) = _U32.unpack_from(data, 0)
    check_frame_length(length, max_frame_bytes)
    if len(data) != length + 4:
        raise WireFormatError(BAD_FRAME, f"frame length {length} but {len(data) - 4} bytes follow it")
    _, opcode, flags, request_id = _HEADER.unpack_from(data, 0)
    return Frame(opcode, flags, request_id, bytes(data[HEADER_BYTES:]))


class FrameBuffer:
    """Cuts a byte stream into frames: `feed` the bytes as they arrive, get the whole frames."""

    __slots__ = ("_rest", "_max")

    def __init__(self, max_frame_bytes: int = MAX_RESPONSE_FRAME_BYTES) -> None:
        self._rest = bytearray()
        self._max = max_frame_bytes

    def feed(self, data: bytes) -> List[Tuple[int, int, int, bytes]]:
        """Every whole frame now buffered, as (opcode, flags, request_id, payload); keeps the rest."""
        if self._rest:
            self._rest += data
            data = bytes(self._rest)
        out = []
        pos = 0
        end = len(data)
        unpack = _HEADER.unpack_from
        while end - pos >= 4:
            (length,) = _U32.unpack_from(data, pos)
            if length < HEADER_AFTER_LEN or length + 4 > self._max:
                check_frame_length(length, self._max)
            if end - pos < length + 4:
                break
            _, opcode, flags, request_id = unpack(data, pos)
            out.append((opcode, flags, request_id, data[pos + HEADER_BYTES : pos + 4 + length]))
            pos += 4 + length
        self._rest = bytearray(data[pos:]) if pos < end else bytearray()
        return out


def decode_request(
    frame: bytes,
    *,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    max_lines: int = DEFAULT_MAX_LINES,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> Tuple[Frame, Any]:
    """A request frame as a server reads it after the handshake: (frame, message).

    Refuses what a server refuses, with its code: the frame length, nonzero flags, an unknown
    opcode, then the opcode's layout and limits. JSON bodies are checked for UTF-8 and syntax
    only (the fields of each operation are the server's to judge).
    """
    f = split_frame(frame, max_frame_bytes)
    if f.flags != 0:
        raise _bad_request(f"request flags are {f.flags:#06x}, not 0")
    op = f.opcode
    p = f.payload
    if op == HELLO:
        return f, decode_hello(p)
    if op == PING:
        decode_empty(p)
        return f, None
    if op == RESERVE:
        return f, decode_reserve(p, max_lines)
    if op == RESERVE_BATCH:
        return f, decode_reserve_batch(p, max_lines, max_batch)
    if op in RESERVATION_ID_OPCODES:
        return f, decode_reservation_id(p)
    if op == GET_STOCK:
        return f, decode_stock_query(p)
    if op == SUBSCRIBE:
        return f, decode_subscribe(p)
    if op == REPLICA_ACK:
        return f, decode_replica_ack(p)
    entry = OPCODES.get(op)
    if entry is None:
        raise WireFormatError(UNKNOWN_OPCODE, f"unknown opcode {op}")
    assert entry[1] == "json", f"binary opcode {op} has no decoder"
    return f, decode_json(p)


def decode_response(frame: bytes) -> Tuple[Frame, Any]:
    """A response frame as a client reads it: (frame, message); an error body when flagged."""
    f = split_frame(frame)
    op = f.opcode
    p = f.payload
    if f.is_error:
        return f, decode_error(p)
    if op == HELLO:
        return f, decode_hello_ok(p)
    if op in (PING, CONFIRM, RELEASE, PAY_BALANCE, SHIP):
        decode_empty(p)
        return f, None
    if op == RESERVE:
        return f, decode_reserved(p)
    if op == RESERVE_BATCH:
        return f, decode_batch_result(p)
    if op == GET_STOCK:
        return f, decode_stock(p)
    if op == GET_RESERVATION:
        return f, decode_reservation(p)
    if op == SUBSCRIBE:
        return f, decode_stream_frame(p)
    entry = OPCODES.get(op)
    if entry is None or entry[1] != "json":
        raise _bad_request(f"no response layout for opcode {op}")
    return f, decode_json(p)
