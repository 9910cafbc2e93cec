"""`omsd.AsyncClient`: an asyncio client that pipelines.

Every call writes its frame at once and waits for its own answer (matched by request id), so
any number of coroutines share one connection without waiting for each other: thousands of
reservations can be in flight. Frames written in the same event-loop turn leave in one write.
At most `max_in_flight` (the server's HelloOk) calls are outstanding; more wait their turn.

Connection loss fails every call in flight with `ConnectionLost(maybe_applied=True)`, except
calls that cannot apply twice (reads, pings, reserves with an idempotency key), which are re-sent
once on a new connection. The next call reconnects (unless `reconnect=False`).
"""

from __future__ import annotations

import asyncio
import collections
import socket
import ssl
import time
from typing import Any, Deque, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _calls, wire
from ._calls import DEFAULT_TTL, Call, Cart, Channel, Lines, TlsOption, Ttl
from .errors import ConnectionLost, OmsdError, RequestTimeout
from .version import CLIENT_NAME

_Answer = Tuple[int, bytes]


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection: writes frames, matches answers to waiting futures."""

    def __init__(self, loop: asyncio.AbstractEventLoop, address: str, timeout: Optional[float]) -> None:
        self.loop = loop
        self.address = address
        self.timeout = timeout
        self.transport: Optional[asyncio.Transport] = None
        self.buffer = wire.FrameBuffer()
        # request id -> (opcode, future of (flags, payload), deadline); insertion order is send
        # order, and every call has the same timeout, so the oldest deadlines come first.
        self.pending: Dict[int, Tuple[int, "asyncio.Future[_Answer]", float]] = {}
        self.out: List[bytearray] = []
        self.flush_scheduled = False
        self.writable: Optional["asyncio.Future[None]"] = None
        self.lost: Optional[OmsdError] = None
        self.next_id = 1
        self.max_in_flight = 1
        # calls waiting for an in-flight slot
        self.slot_waiters: Deque["asyncio.Future[None]"] = collections.deque()
        self.sweeper: Optional[asyncio.TimerHandle] = None
        self.info: Optional[wire.HelloOk] = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        if self.timeout is not None:
            self.sweeper = self.loop.call_later(self._sweep_interval(), self._sweep)

    def data_received(self, data: bytes) -> None:
        try:
            frames = self.buffer.feed(data)
        except wire.WireFormatError as e:
            self._fail(ConnectionLost(f"unreadable frame from omsd at {self.address}: {e}", maybe_applied=True))
            return
        pending = self.pending
        for opcode, flags, request_id, payload in frames:
            entry = pending.get(request_id)
            if entry is not None and entry[0] == opcode:
                del pending[request_id]
                future = entry[1]
                if not future.done():
                    future.set_result((flags, payload))
            elif opcode == 0 and request_id == 0 and flags & wire.FLAG_ERROR:
                # A connection-level error: the server closes the connection after it.
                self._fail(_calls.read_error(payload))
                return
            # Otherwise the late answer of a call that timed out or was cancelled: dropped.
        self._release_slots()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        reason = f": {exc}" if exc else ""
        self._fail(ConnectionLost(f"connection to omsd at {self.address} lost{reason}", maybe_applied=True))

    def pause_writing(self) -> None:
        if self.writable is None:
            self.writable = self.loop.create_future()

    def resume_writing(self) -> None:
        writable, self.writable = self.writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    # Own
    def _fail(self, error: OmsdError) -> None:
        if self.lost is None:
            self.lost = error
        pending, self.pending = self.pending, {}
        for _, future, _ in pending.values():
            if not future.done():
                future.set_exception(error)
        waiters, self.slot_waiters = self.slot_waiters, collections.deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)  # the caller finds the connection lost, before sending
        self.resume_writing()
        if self.sweeper is not None:
            self.sweeper.cancel()
        if self.transport is not None:
            self.transport.close()

    def _sweep_interval(self) -> float:
        assert self.timeout is not None
        return min(1.0, max(0.01, self.timeout / 4))

    def _sweep(self) -> None:
        """Fail the calls whose deadline passed (one timer per connection, not one per call)."""
        now = self.loop.time()
        expired = []
        for request_id, (_, future, deadline) in self.pending.items():
            if deadline > now:
                break
            expired.append((request_id, future))
        for request_id, future in expired:
            del self.pending[request_id]
            if not future.done():
                future.set_exception(
                    RequestTimeout(
                        f"no answer from omsd at {self.address} within {self.timeout} s; "
                        "the request may or may not have been applied"
                    )
                )
        if expired:
            self._release_slots()
        if self.lost is None:
            self.sweeper = self.loop.call_later(self._sweep_interval(), self._sweep)

    async def slot(self) -> None:
        """Wait until fewer than max_in_flight calls are outstanding."""
        while len(self.pending) >= self.max_in_flight and self.lost is None:
            waiter = self.loop.create_future()
            self.slot_waiters.append(waiter)
            await waiter

    def _release_slots(self) -> None:
        waiters = self.slot_waiters
        free = self.max_in_flight - len(self.pending)
        while waiters and free > 0:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1

    def send(self, opcode: int, frame: bytearray) -> Tuple[int, "asyncio.Future[_Answer]"]:
        """Queue a frame (written at the end of this loop turn) and register its answer."""
        if self.lost is not None:
            raise ConnectionLost(self.lost.message, maybe_applied=False)
        request_id = self.next_id
        self.next_id = request_id + 1 if request_id < wire.U64_MAX - 2 else 1
        wire.pack_header(frame, opcode, request_id)
        future: "asyncio.Future[_Answer]" = self.loop.create_future()
        deadline = self.loop.time() + self.timeout if self.timeout is not None else 0.0
        self.pending[request_id] = (opcode, future, deadline)
        self.out.append(frame)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self._flush)
        return request_id, future

    def _flush(self) -> None:
        self.flush_scheduled = False
        out, self.out = self.out, []
        if self.transport is not None and self.lost is None and out:
            self.transport.write(b"".join(out) if len(out) > 1 else out[0])

    def forget(self, request_id: int) -> None:
        """Stop waiting for an answer (cancellation); a late answer is dropped."""
        self.pending.pop(request_id, None)
        self._release_slots()

    def close(self) -> None:
        if self.sweeper is not None:
            self.sweeper.cancel()
        if self.transport is not None:
            self.transport.close()


class AsyncClient:
    """An asyncio omsd client with pipelining.

    ```
    async with omsd.AsyncClient("127.0.0.1:7700", api_key=None) as client:
        held = await client.reserve([("MUG-WHT", 1)], idempotency_key="order-1001")
    ```
    or `client = await omsd.AsyncClient.connect(...)`. The options are those of `omsd.Client`.
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
        self._conn: Optional[_Connection] = None
        self._connecting: Optional["asyncio.Future[_Connection]"] = None
        self._closed = False
        self._ever_connected = False
        #: the server's HelloOk of the current connection: role, limits, server version
        self.server_info: Optional[wire.HelloOk] = None

    @classmethod
    async def connect(cls, address: str = "127.0.0.1:7700", api_key: Optional[str] = None, **options: Any) -> "AsyncClient":
        """A connected client (a wrong address or key fails here)."""
        client = cls(address, api_key, **options)
        await client._connection()
        return client

    async def __aenter__(self) -> "AsyncClient":
        await self._connection()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection; calls in flight fail with `ConnectionLost`."""
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            conn._fail(ConnectionLost("the client is closed", maybe_applied=True))

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("connected" if self._conn is not None else "disconnected")
        return f"<omsd.AsyncClient {self._address} {state}>"

    # Connection ------------------------------------------------------------------------------

    async def _connection(self) -> _Connection:
        conn = self._conn
        if conn is not None and conn.lost is None:
            return conn
        if self._closed:
            raise ConnectionLost("the client is closed")
        if self._ever_connected and not self._reconnect:
            raise ConnectionLost("the connection was lost and reconnect is off")
        # One connection attempt at a time: concurrent callers wait for the same one.
        if self._connecting is None:
            loop = asyncio.get_running_loop()
            self._connecting = loop.create_future()
            attempt = self._connecting
            try:
                conn = await self._open()
            except BaseException as e:
                self._connecting = None
                if not attempt.done():
                    attempt.set_exception(e)
                    attempt.exception()  # mark retrieved: a lone caller re-raises it below
                raise
            self._connecting = None
            if self._closed:
                # close() was called while connecting: do not keep the new connection.
                conn._fail(ConnectionLost("the client is closed"))
                error = ConnectionLost("the client is closed")
                attempt.set_exception(error)
                attempt.exception()
                raise error
            self._conn = conn
            self._ever_connected = True
            attempt.set_result(conn)
            return conn
        return await asyncio.shield(self._connecting)

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        where = f"omsd at {self._address}"
        conn = _Connection(loop, self._address, self._timeout)
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: conn,
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._server_name if self._ssl is not None else None,
                ),
                self._connect_timeout,
            )
        except asyncio.TimeoutError:
            conn.close()
            raise ConnectionLost(f"cannot connect to {where}: timed out after {self._connect_timeout} s") from None
        except (OSError, ssl.SSLError) as e:
            raise ConnectionLost(f"cannot connect to {where}: {e}") from e
        hello = wire.encode_hello(wire.Hello(api_key=self._api_key or "", client=self._client_name))
        future: "asyncio.Future[_Answer]" = loop.create_future()
        conn.pending[0] = (wire.HELLO, future, float("inf"))
        assert conn.transport is not None
        conn.transport.write(wire.encode_frame(wire.HELLO, 0, hello))
        try:
            flags, payload = await asyncio.wait_for(future, self._connect_timeout)
        except asyncio.TimeoutError:
            conn.close()
            raise ConnectionLost(f"handshake with {where} timed out after {self._connect_timeout} s") from None
        except ConnectionLost as e:
            conn.close()
            raise ConnectionLost(f"handshake with {where} failed: the server closed the connection") from e
        try:
            info = _calls.read_hello_answer(flags, payload)
        except OmsdError:
            conn.close()
            raise
        conn.info = info
        conn.max_in_flight = max(1, info.max_in_flight)
        self.server_info = info
        return conn

    # Calls -------------------------------------------------------------------------------------

    async def _run(self, call: Call) -> Any:
        for attempt in (1, 2):
            conn = self._conn
            if conn is None or conn.lost is not None:
                conn = await self._connection()
            info = conn.info
            assert info is not None
            _calls.check_frame_size(len(call.frame), info.max_frame_bytes)
            if len(conn.pending) >= conn.max_in_flight:
                await conn.slot()
            if conn.writable is not None:
                await conn.writable
            try:
                request_id, future = conn.send(call.opcode, call.frame)
            except ConnectionLost:
                # Nothing was written: moving the call to a new connection is always safe.
                if attempt == 1 and self._reconnect and not self._closed:
                    continue
                raise
            try:
                flags, payload = await future
            except asyncio.CancelledError:
                conn.forget(request_id)
                raise
            except ConnectionLost as lost:
                if attempt == 1 and call.retry_safe and self._reconnect and not self._closed:
                    try:
                        await self._connection()
                    except ConnectionLost:
                        raise lost from None  # report the first loss: the call may have been applied
                    continue
                raise
            return _calls.read_answer(call, flags, payload)
        raise AssertionError("unreachable")

    async def ping(self) -> float:
        """A round trip to the server; returns its duration in seconds."""
        started = time.perf_counter()
        await self._run(_calls.ping())
        return time.perf_counter() - started

    async def reserve(
        self,
        lines: Lines,
        ttl: Ttl = DEFAULT_TTL,
        idempotency_key: Optional[str] = None,
        customer: Optional[int] = None,
        channel: Channel = "own",
        campaign: Optional[int] = None,
    ) -> wire.Reserved:
        """Hold stock for a checkout: every line or nothing (see `omsd.Client.reserve`)."""
        return await self._run(_calls.reserve(lines, ttl, idempotency_key, customer, channel, campaign))

    async def reserve_batch(
        self, carts: Sequence[Union[Cart, Mapping[str, Any]]]
    ) -> List[Union[wire.Reserved, OmsdError]]:
        """Many carts in one request: each item is a `Reserved` or the refusal (returned)."""
        return await self._run(_calls.reserve_batch(carts))

    async def confirm(self, reservation_id: int) -> None:
        await self._run(_calls.by_reservation(wire.CONFIRM, reservation_id))

    async def release(self, reservation_id: int) -> None:
        await self._run(_calls.by_reservation(wire.RELEASE, reservation_id))

    async def pay_balance(self, reservation_id: int) -> None:
        await self._run(_calls.by_reservation(wire.PAY_BALANCE, reservation_id))

    async def ship(self, reservation_id: int) -> None:
        await self._run(_calls.by_reservation(wire.SHIP, reservation_id))

    async def get_reservation(self, reservation_id: int) -> wire.Reservation:
        return await self._run(_calls.by_reservation(wire.GET_RESERVATION, reservation_id))

    async def stock(self, sku: wire.SkuRef) -> wire.Stock:
        return await self._run(_calls.stock(sku))

    async def lookup_skus(self, codes: Sequence[str]) -> List[Optional[int]]:
        return (await self._run(_calls.json_call("lookup_skus", {"codes": list(codes)})))["ids"]

    async def export_stock(self) -> List[dict]:
        return await self._run(_calls.json_call("export_stock"))

    async def get_campaign(self, campaign_id: int) -> dict:
        return await self._run(_calls.json_call("get_campaign", {"id": campaign_id}))

    async def call_json(self, operation: Union[str, int], body: Any = None) -> Any:
        """Any JSON-bodied operation of PROTOCOL.md section 7 by name; returns the parsed answer."""
        return await self._run(_calls.json_call(operation, body))
