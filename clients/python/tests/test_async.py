"""omsd.AsyncClient against a real `omsd --demo`: pipelining, typed errors, connection loss."""

from __future__ import annotations

import asyncio

import pytest

import omsd
from conftest import Omsd


def run(coroutine):
    return asyncio.run(coroutine)


def test_pipelined_reserves_hold_exactly_the_stock(demo: Omsd) -> None:
    # 1,500 reservations in flight at once on one connection: each answer reaches its caller
    # (distinct ids, one unit each) and stock falls by exactly the units held. CAP-BLK (40 units)
    # runs out: the other carts get InsufficientStock, never an oversell.
    async def main() -> None:
        async with omsd.AsyncClient(demo.address) as client:
            results = await asyncio.gather(
                *(client.reserve([("SOCKS-3P", 1)], customer=i) for i in range(700)),
                *(client.reserve([("CAP-BLK", 1)]) for _ in range(800)),
                return_exceptions=True,
            )
            socks, caps = results[:700], results[700:]
            assert all(isinstance(r, omsd.Reserved) for r in socks)
            assert len({r.id for r in socks}) == 700
            held_caps = [r for r in caps if isinstance(r, omsd.Reserved)]
            refused = [r for r in caps if not isinstance(r, omsd.Reserved)]
            assert len(held_caps) == 40
            assert all(isinstance(r, omsd.InsufficientStock) and r.sku == "CAP-BLK" for r in refused)
            assert (await client.stock("SOCKS-3P")).reserved == 700
            assert (await client.stock("CAP-BLK")).available == 0
            await asyncio.gather(*(client.release(r.id) for r in held_caps))
            assert (await client.stock("CAP-BLK")).available == 40

    run(main())


def test_async_round_trip_and_errors(demo: Omsd) -> None:
    # The same operations as the blocking client, awaited.
    async def main() -> None:
        client = await omsd.AsyncClient.connect(demo.address)
        try:
            assert client.server_info is not None and client.server_info.version == 2
            assert await client.ping() >= 0
            held = await client.reserve([("MUG-WHT", 2)], ttl=120, idempotency_key="a-1")
            assert [(a.sku, a.warehouse, a.qty) for a in held.allocations] == [("MUG-WHT", "SH", 2)]
            again = await client.reserve([("MUG-WHT", 2)], ttl=120, idempotency_key="a-1")
            assert (again.id, again.replayed) == (held.id, True)
            await client.confirm(held.id)
            assert (await client.get_reservation(held.id)).status == "confirmed"
            with pytest.raises(omsd.InsufficientStock) as refused:
                await client.reserve([("PHONE-X", 100)])
            assert refused.value.available == 15
            with pytest.raises(omsd.UnknownReservation):
                await client.release(987654321)
            batch = await client.reserve_batch([omsd.Cart([("MUG-WHT", 1)]), omsd.Cart([("NOPE", 1)])])
            assert isinstance(batch[0], omsd.Reserved) and isinstance(batch[1], omsd.UnknownSku)
            assert await client.lookup_skus(["MUG-WHT"]) == [(await client.stock("MUG-WHT")).sku_id]
        finally:
            await client.close()
        with pytest.raises(omsd.ConnectionLost):
            await client.ping()

    run(main())


def test_connection_loss_fails_calls_in_flight_and_reconnects(demo: Omsd) -> None:
    # The server is paused with calls in flight and then killed: unkeyed reserves fail with
    # ConnectionLost(maybe_applied=True). After a restart on the same data directory, the next
    # call reconnects by itself and sees the state the log kept.
    async def main() -> None:
        client = await omsd.AsyncClient.connect(demo.address, timeout=None)
        kept = await client.reserve([("SOCKS-3P", 3)])
        demo.pause()
        calls = [asyncio.ensure_future(client.reserve([("SOCKS-3P", 1)])) for _ in range(50)]
        await asyncio.sleep(0.2)
        demo.resume()
        demo.kill()
        results = await asyncio.gather(*calls, return_exceptions=True)
        lost = [r for r in results if isinstance(r, omsd.ConnectionLost)]
        assert lost, results
        assert all(e.maybe_applied for e in lost)
        demo.start()
        view = await client.get_reservation(kept.id)
        assert view.status == "held"
        await client.close()

    run(main())


def test_keyed_reserve_is_resent_after_a_lost_connection(demo: Omsd) -> None:
    # A reserve with an idempotency key whose connection drops is re-sent on a new connection
    # (it cannot hold twice): the caller gets the reservation, not an error.
    async def main() -> None:
        client = await omsd.AsyncClient.connect(demo.address, timeout=None)
        conn = client._conn
        assert conn is not None
        call = asyncio.ensure_future(client.reserve([("SOCKS-3P", 2)], idempotency_key="retry-1"))
        await asyncio.sleep(0)  # the frame is queued; drop the connection under it
        assert conn.transport is not None
        conn.transport.abort()
        held = await call
        assert client._conn is not conn
        again = await client.reserve([("SOCKS-3P", 2)], idempotency_key="retry-1")
        assert again.id == held.id
        assert (await client.stock("SOCKS-3P")).reserved == 2
        await client.close()

    run(main())


def test_request_timeout(demo: Omsd) -> None:
    # A server that stops answering (SIGSTOP) makes calls fail with RequestTimeout after
    # `timeout`; after it resumes, the same client works again.
    async def main() -> None:
        client = await omsd.AsyncClient.connect(demo.address, timeout=0.5)
        demo.pause()
        try:
            with pytest.raises(omsd.RequestTimeout):
                await client.reserve([("SOCKS-3P", 1)])
        finally:
            demo.resume()
        assert await client.ping() >= 0
        await client.close()

    run(main())
