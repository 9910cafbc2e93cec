"""`omsd.Client`: a blocking connection to omsd, for scripts, Django views and Celery tasks.

One request is on the wire at a time; threads share a client by taking turns (a lock). For many
requests at once (pipelining), use `omsd.AsyncClient`, or `reserve_batch` here.

Connection loss: a call whose answer was lost raises `ConnectionLost` (`maybe_applied` says
whether the request had been sent). Calls that cannot apply twice (reads, pings, reserves with
an idempotency key) are re-sent once on a fresh connection first. The next call after a loss
reconnects (unless `reconnect=False`); a connection the server closed while idle (its idle
timeout) is noticed before sending and replaced without failing anything.
"""

from __future__ import annotations

import collections
import select
import socket
import ssl
import threading
import time
from typing import Any, Deque, List, Mapping, Optional, Sequence, Tuple, Union

from . import _calls, wire
from ._calls import DEFAULT_TTL, Call, Cart, Channel, Lines, TlsOption, Ttl
from .errors import ConnectionLost, OmsdError, RequestTimeout
from .version import CLIENT_NAME

_RawFrame = Tuple[int, int, int, bytes]


class _Eof(Exception):
    """The server closed the connection."""


class Client:
    """A blocking omsd client.

    `Client("127.0.0.1:7700", api_key=None, tls=None)` connects at once (a wrong address or key
    fails here). `tls`: None for plain TCP, True to trust the system's roots, a path to a PEM file
    of trusted certificates, or an `ssl.SSLContext`; `server_name` when the certificate does not
    name the address's host. `timeout` bounds each call in seconds.
    """

    def __init__(
        self,
        address: str = "127.0.0.1:7700",
        api_key: Optional[str] = None,
        *,
        tls: TlsOption = None,
        server_name: Optional[str] = None,
        timeout: Optional[float] = 30.0,
        connect_timeout: float = 5.0,
        reconnect: bool = True,
        client_name: str = CLIENT_NAME,
    ) -> None:
        self._host, self._port = _calls.parse_address(address)
        self._address = address
        self._ssl = _calls.ssl_context(tls)
        self._server_name = server_name or self._host
        self._api_key = api_key
        self._client_name = client_name
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._reconnect = reconnect
        self._sock: Optional[socket.socket] = None
        self._buffer = wire.FrameBuffer()
        self._frames: Deque[_RawFrame] = collections.deque()
        self._next_id = 1
        self._lock = threading.Lock()
        self._closed = False
        #: the server's HelloOk of the current connection: role, limits, server version
        self.server_info: Optional[wire.HelloOk] = None
        with self._lock:
            self._connect()

    # Connection ------------------------------------------------------------------------------

    def _connect(self) -> None:
        where = f"omsd at {self._address}"
        try:
            sock = socket.create_connection((self._host, self._port), timeout=self._connect_timeout)
        except OSError as e:
            raise ConnectionLost(f"cannot connect to {where}: {e}") from e
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._ssl is not None:
                sock = self._ssl.wrap_socket(sock, server_hostname=self._server_name)
            sock.sendall(_calls.hello_frame(self._api_key, self._client_name))
            self._sock = sock
            self._buffer = wire.FrameBuffer()
            self._frames.clear()
            _, flags, _, payload = self._next_frame()
            self.server_info = _calls.read_hello_answer(flags, payload)
        except OmsdError:
            self._drop()
            raise
        except (OSError, _Eof, wire.WireFormatError) as e:
            self._drop()
            sock.close()
            reason = "the server closed the connection" if isinstance(e, _Eof) else str(e)
            raise ConnectionLost(f"handshake with {where} failed: {reason}") from e
        sock.settimeout(self._timeout)

    def _drop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def _ensure_open(self) -> None:
        if self._closed:
            raise ConnectionLost("the client is closed")
        if self._sock is not None:
            self._drop_if_closed_by_server()
        if self._sock is None:
            if not self._reconnect and self.server_info is not None:
                raise ConnectionLost("the connection was lost and reconnect is off")
            self._connect()

    def _drop_if_closed_by_server(self) -> None:
        """Before sending: notice a connection the server has closed (idle timeout, restart)."""
        sock = self._sock
        assert sock is not None
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            self._drop()
            return
        pending = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
        if not readable and not pending:
            return
        sock.setblocking(False)
        try:
            data: Optional[bytes] = sock.recv(65536)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            data = None  # TLS records without application data (session tickets)
        except OSError:
            self._drop()
            return
        finally:
            if self._sock is not None:
                sock.settimeout(self._timeout)
        if data == b"":
            self._drop()
            return
        if data:
            try:
                self._frames.extend(self._buffer.feed(data))
            except wire.WireFormatError:
                self._drop()
                return
            # A connection-level error (opcode 0, request id 0) means the server is closing it.
            if any(f[0] == 0 and f[2] == 0 for f in self._frames):
                self._drop()

    def _next_frame(self) -> _RawFrame:
        while not self._frames:
            sock = self._sock
            assert sock is not None
            data = sock.recv(262144)
            if not data:
                raise _Eof()
            self._frames.extend(self._buffer.feed(data))
        return self._frames.popleft()

    def close(self) -> None:
        """Close the connection; later calls raise `ConnectionLost`."""
        with self._lock:
            self._closed = True
            self._drop()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("connected" if self._sock is not None else "disconnected")
        return f"<omsd.Client {self._address} {state}>"

    # Calls -------------------------------------------------------------------------------------

    def _run(self, call: Call) -> Any:
        with self._lock:
            first_loss: Optional[ConnectionLost] = None
            for attempt in (1, 2):
                if first_loss is None:
                    self._ensure_open()
                else:
                    try:
                        self._ensure_open()
                    except ConnectionLost:
                        raise first_loss from None  # the first attempt may have been applied
                assert self.server_info is not None
                request_id = self._next_id
                self._next_id = request_id + 1 if request_id < wire.U64_MAX - 2 else 1
                frame = call.frame
                _calls.check_frame_size(len(frame), self.server_info.max_frame_bytes)
                wire.pack_header(frame, call.opcode, request_id)
                sent = False
                try:
                    sock = self._sock
                    assert sock is not None
                    sock.sendall(frame)
                    sent = True
                    while True:
                        opcode, flags, got_id, payload = self._next_frame()
                        if got_id == request_id and opcode == call.opcode:
                            return _calls.read_answer(call, flags, payload)
                        if opcode == 0 and got_id == 0:
                            # A connection-level error: the server closes the connection.
                            self._drop()
                            raise _calls.read_error(payload)
                        # Otherwise the late answer of an earlier call that timed out: skip it.
                except socket.timeout:
                    self._drop()
                    raise RequestTimeout(
                        f"no answer from omsd at {self._address} within {self._timeout} s; "
                        "the request may or may not have been applied"
                    ) from None
                except (OSError, _Eof, wire.WireFormatError) as e:
                    self._drop()
                    reason = "the server closed the connection" if isinstance(e, _Eof) else str(e)
                    maybe = " (the request may or may not have been applied)" if sent else ""
                    lost = ConnectionLost(
                        f"connection to omsd at {self._address} lost: {reason}{maybe}", maybe_applied=sent
                    )
                    if call.retry_safe and attempt == 1 and self._reconnect:
                        first_loss = lost
                        continue
                    raise lost from e
        raise AssertionError("unreachable")

    def ping(self) -> float:
        """A round trip to the server; returns its duration in seconds."""
        started = time.perf_counter()
        self._run(_calls.ping())
        return time.perf_counter() - started

    def reserve(
        self,
        lines: Lines,
        ttl: Ttl = DEFAULT_TTL,
        idempotency_key: Optional[str] = None,
        customer: Optional[int] = None,
        channel: Channel = "own",
        campaign: Optional[int] = None,
    ) -> wire.Reserved:
        """Hold stock for a checkout: every line or nothing.

        `lines`: `(sku, qty)` pairs (or a dict), a SKU by code (str) or id (int). `ttl`: how long
        the hold lasts unless confirmed, in seconds or a timedelta (default 15 minutes). Send an
        `idempotency_key` (e.g. the shop's order number): a retry with the same key answers the
        first reservation again (`replayed`) instead of holding twice; the same key with another
        cart raises `IdempotencyKeyReused`. `customer` (a number) counts per-customer campaign
        limits; `channel` is "own", "taobao", "jd", "douyin" or a number; `campaign` a flash-sale
        or presale id. Raises `InsufficientStock` (with `.available`), `SoldOut`,
        `LimitExceeded`, `UnknownSku`, ...
        """
        return self._run(_calls.reserve(lines, ttl, idempotency_key, customer, channel, campaign))

    def reserve_batch(self, carts: Sequence[Union[Cart, Mapping[str, Any]]]) -> List[Union[wire.Reserved, OmsdError]]:
        """Many independent carts in one request (at most `server_info.max_batch`): each item of
        the answer is a `Reserved` or the refusal (an `OmsdError`, returned, not raised)."""
        return self._run(_calls.reserve_batch(carts))

    def confirm(self, reservation_id: int) -> None:
        """The customer paid: the hold no longer expires."""
        self._run(_calls.by_reservation(wire.CONFIRM, reservation_id))

    def release(self, reservation_id: int) -> None:
        """Give the units back (cancelled, payment failed)."""
        self._run(_calls.by_reservation(wire.RELEASE, reservation_id))

    def pay_balance(self, reservation_id: int) -> None:
        """A presale's balance was paid."""
        self._run(_calls.by_reservation(wire.PAY_BALANCE, reservation_id))

    def ship(self, reservation_id: int) -> None:
        """The units left the warehouse (needs an ops key)."""
        self._run(_calls.by_reservation(wire.SHIP, reservation_id))

    def get_reservation(self, reservation_id: int) -> wire.Reservation:
        """A reservation's status ("held", "confirmed", ...) and allocations."""
        return self._run(_calls.by_reservation(wire.GET_RESERVATION, reservation_id))

    def stock(self, sku: wire.SkuRef) -> wire.Stock:
        """One SKU's stock (by code or id): totals and per warehouse."""
        return self._run(_calls.stock(sku))

    def lookup_skus(self, codes: Sequence[str]) -> List[Optional[int]]:
        """The id of each SKU code, None when unknown."""
        return self._run(_calls.json_call("lookup_skus", {"codes": list(codes)}))["ids"]

    def export_stock(self) -> List[dict]:
        """Every SKU's availability: `[{"sku": id, "code": ..., "available": ...}]`."""
        return self._run(_calls.json_call("export_stock"))

    def get_campaign(self, campaign_id: int) -> dict:
        return self._run(_calls.json_call("get_campaign", {"id": campaign_id}))

    def call_json(self, operation: Union[str, int], body: Any = None) -> Any:
        """Any JSON-bodied operation of PROTOCOL.md section 7 by name, e.g.
        `call_json("order_get", {"id": 123})`; returns the parsed answer."""
        return self._run(_calls.json_call(operation, body))
