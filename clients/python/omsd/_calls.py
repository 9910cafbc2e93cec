"""What both clients share: turning arguments into request payloads and answers into results.

Each operation is a function returning a `Call`: the opcode, the frame (its header is filled in
when sent), how to read the success answer, and whether re-sending it after a lost connection is
harmless. `Client` runs calls over a
blocking socket, `AsyncClient` over asyncio; neither knows a layout.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from . import wire
from .errors import OmsdError, ProtocolError, error_from_body
from .wire import SkuRef

#: what a reservation holds unless told otherwise: 15 minutes, a usual checkout window
DEFAULT_TTL = timedelta(minutes=15)
DEFAULT_PORT = 7700

Lines = Union[Iterable[Tuple[SkuRef, int]], Mapping[SkuRef, int]]
Ttl = Union[int, float, timedelta]
Channel = Union[int, str]
TlsOption = Union[None, bool, ssl.SSLContext, str, "os.PathLike[str]"]


class Call(NamedTuple):
    opcode: int
    #: the whole frame: 16 header bytes (filled in when sent, with the request id) then the payload
    frame: bytearray
    #: reads a success payload into the result
    decode: Callable[[bytes], Any]
    #: re-sending after a lost connection cannot apply it twice (reads; keyed reserves)
    retry_safe: bool


def parse_address(address: str) -> Tuple[str, int]:
    """`host:port`, `[v6]:port` or a bare host (port 7700)."""
    if not isinstance(address, str) or not address:
        raise ValueError(f"an omsd address is 'host:port', not {address!r}")
    if address.startswith("["):
        host, sep, rest = address[1:].partition("]")
        if not sep:
            raise ValueError(f"unclosed '[' in address {address!r}")
        port = rest[1:] if rest.startswith(":") else ""
    elif address.count(":") == 1:
        host, port = address.split(":")
    else:
        host, port = address, ""
    if not port:
        return host, DEFAULT_PORT
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad port in address {address!r}")
    return host, int(port)


def ssl_context(tls: TlsOption) -> Optional[ssl.SSLContext]:
    """`tls`: None/False plain TCP; True the system's trusted roots; a path: trust only the
    certificates in that PEM file; or a ready `ssl.SSLContext`."""
    if tls is None or tls is False:
        return None
    if tls is True:
        return ssl.create_default_context()
    if isinstance(tls, ssl.SSLContext):
        return tls
    if isinstance(tls, (str, os.PathLike)):
        return ssl.create_default_context(cafile=os.fspath(tls))
    raise TypeError(f"tls is a bool, a CA file path or an ssl.SSLContext, not {type(tls).__name__}")


def ttl_ms(ttl: Ttl) -> int:
    """Seconds (int or float) or a timedelta, as whole milliseconds."""
    if isinstance(ttl, timedelta):
        ms = ttl // timedelta(milliseconds=1)
    elif isinstance(ttl, (int, float)) and not isinstance(ttl, bool):
        ms = round(ttl * 1000)
    else:
        raise TypeError(f"ttl is seconds (a number) or a timedelta, not {type(ttl).__name__}")
    if ms <= 0:
        raise ValueError(f"ttl must be positive, not {ttl!r}")
    return int(ms)


def channel_number(channel: Channel) -> int:
    if isinstance(channel, str):
        if channel in wire.CHANNELS:
            return wire.CHANNELS[channel]
        if channel.isdigit():
            return int(channel)
        raise ValueError(f"unknown channel {channel!r}: one of {', '.join(wire.CHANNELS)} or a number")
    if isinstance(channel, int) and not isinstance(channel, bool):
        return channel
    raise TypeError(f"channel is a name or a number, not {type(channel).__name__}")


def normalize_lines(lines: Lines) -> List[Tuple[SkuRef, int]]:
    items = lines.items() if isinstance(lines, Mapping) else lines
    out = []
    for item in items:
        try:
            sku, qty = item
        except (TypeError, ValueError):
            raise TypeError(f"a line is a (sku, qty) pair, not {item!r}") from None
        out.append((sku, qty))
    return out


@dataclass
class Cart:
    """One cart of `reserve_batch`, with the same arguments as `reserve`."""

    lines: Lines
    ttl: Ttl = DEFAULT_TTL
    idempotency_key: Optional[str] = None
    customer: Optional[int] = None
    channel: Channel = "own"
    campaign: Optional[int] = None

    def request(self) -> wire.ReserveRequest:
        return wire.ReserveRequest(
            ttl_ms=ttl_ms(self.ttl),
            lines=normalize_lines(self.lines),
            customer=0 if self.customer is None else self.customer,
            channel=channel_number(self.channel),
            campaign=self.campaign,
            idempotency_key=self.idempotency_key or "",
        )


def hello_frame(api_key: Optional[str], client_name: str) -> bytes:
    return wire.encode_frame(wire.HELLO, 0, wire.encode_hello(wire.Hello(api_key=api_key or "", client=client_name)))


def read_hello_answer(flags: int, payload: bytes) -> wire.HelloOk:
    """The HelloOk, or raise the handshake refusal (Unauthenticated, UnsupportedVersion, ...)."""
    if flags & wire.FLAG_ERROR:
        raise read_error(payload)
    try:
        return wire.decode_hello_ok(payload)
    except wire.WireFormatError as e:
        raise ProtocolError(f"unreadable HelloOk: {e.message}") from None


def read_error(payload: bytes) -> OmsdError:
    try:
        body = wire.decode_error(payload)
    except wire.WireFormatError as e:
        return ProtocolError(f"unreadable error body: {e.message}")
    return error_from_body(body.code, body.name, body.message, body.available, body.sku_id, body.sku, body.warehouse)


def read_answer(call: Call, flags: int, payload: bytes) -> Any:
    """The result of a call from its answer; raises the refusal when the answer is an error."""
    if flags & wire.FLAG_ERROR:
        raise read_error(payload)
    try:
        return call.decode(payload)
    except wire.WireFormatError as e:
        op = wire.OPCODES.get(call.opcode, ("opcode " + str(call.opcode), ""))[0]
        raise ProtocolError(f"unreadable {op} answer: {e.message}") from None


def check_frame_size(frame_len: int, max_frame_bytes: int) -> None:
    if frame_len > max_frame_bytes:
        from ._tables import FrameTooLarge

        raise FrameTooLarge(
            f"request frame of {frame_len} bytes exceeds the server's max_frame_bytes {max_frame_bytes}; not sent"
        )


# Operations ----------------------------------------------------------------------------------


def _empty(payload: bytes) -> None:
    wire.decode_empty(payload)


def _batch_items(payload: bytes) -> List[Union[wire.Reserved, OmsdError]]:
    items: List[Union[wire.Reserved, OmsdError]] = []
    for item in wire.decode_batch_result(payload):
        if isinstance(item, wire.ErrorBody):
            items.append(
                error_from_body(
                    item.code, item.name, item.message, item.available, item.sku_id, item.sku, item.warehouse
                )
            )
        else:
            items.append(item)
    return items


def _frame(payload: bytes) -> bytearray:
    frame = bytearray(wire.HEADER_BYTES)
    frame += payload
    return frame


def ping() -> Call:
    return Call(wire.PING, bytearray(wire.HEADER_BYTES), _empty, True)


def reserve(
    lines: Lines,
    ttl: Ttl = DEFAULT_TTL,
    idempotency_key: Optional[str] = None,
    customer: Optional[int] = None,
    channel: Channel = "own",
    campaign: Optional[int] = None,
) -> Call:
    # The hot path: the body is written straight after the header space, no message object.
    frame = bytearray(wire.HEADER_BYTES)
    wire.put_reserve(
        frame,
        ttl_ms(ttl),
        lines if type(lines) is list else (lines.items() if isinstance(lines, Mapping) else lines),
        0 if customer is None else customer,
        channel if type(channel) is int else channel_number(channel),
        campaign,
        idempotency_key or "",
    )
    return Call(wire.RESERVE, frame, wire.decode_reserved, bool(idempotency_key))


def reserve_batch(carts: Sequence[Union[Cart, Mapping[str, Any]]]) -> Call:
    requests = [(c if isinstance(c, Cart) else Cart(**c)).request() for c in carts]
    # A batch is safe to re-send only when every cart carries an idempotency key.
    safe = all(r.idempotency_key for r in requests)
    return Call(wire.RESERVE_BATCH, _frame(wire.encode_reserve_batch(requests)), _batch_items, safe)


def by_reservation(opcode: int, reservation_id: int) -> Call:
    decode = wire.decode_reservation if opcode == wire.GET_RESERVATION else _empty
    return Call(opcode, _frame(wire.encode_reservation_id(reservation_id)), decode, opcode == wire.GET_RESERVATION)


def stock(sku: SkuRef) -> Call:
    return Call(wire.GET_STOCK, _frame(wire.encode_stock_query(sku)), wire.decode_stock, True)


#: JSON operations that only read
_READ_ONLY_JSON = {"lookup_skus", "export_stock", "get_campaign", "audit", "order_get", "order_list", "wave_get", "waybill"}


def json_call(operation: Union[str, int], body: Any = None) -> Call:
    """Any JSON-bodied operation (section 7) by name (`"order_get"`) or opcode."""
    if isinstance(operation, str):
        opcode = wire.OPCODE_NUMBERS.get(operation)
        if opcode is None:
            raise ValueError(f"unknown operation {operation!r}")
    else:
        opcode = operation
    name, kind = wire.OPCODES.get(opcode, (str(opcode), ""))
    if kind != "json":
        raise ValueError(f"{name} is not a JSON-bodied operation: use its own method")
    return Call(opcode, _frame(wire.encode_json({} if body is None else body)), wire.decode_json, name in _READ_ONLY_JSON)
