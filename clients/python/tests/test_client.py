"""omsd.Client (blocking) against a real `omsd --demo` started by the test (conftest.py).

The demo catalog: warehouses SH (priority 0) and BJ; TSHIRT-RED-XL 120 SH + 80 BJ, MUG-WHT 60 +
40, PHONE-X 10 + 5, CAP-BLK 40 + 0, SOCKS-3P 500 + 300, kit GIFT-BOX = MUG-WHT + 2 x SOCKS-3P.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

import omsd
from conftest import Omsd


def test_reserve_confirm_release_round_trip(demo: Omsd) -> None:
    # A reservation names SKU and warehouse codes, lowers availability, and confirm/release move
    # it through its states; release gives the units back.
    with omsd.Client(demo.address) as client:
        before = client.stock("MUG-WHT").available
        held = client.reserve([("TSHIRT-RED-XL", 2), ("MUG-WHT", 1)], ttl=600, idempotency_key="order-1")
        assert held.id > 0 and not held.replayed
        assert sorted((a.sku, a.warehouse, a.qty) for a in held.allocations) == [
            ("MUG-WHT", "SH", 1),
            ("TSHIRT-RED-XL", "SH", 2),
        ]
        assert client.stock("MUG-WHT").available == before - 1
        view = client.get_reservation(held.id)
        assert (view.status, view.id, view.expires_at_ms) == ("held", held.id, held.expires_at_ms)
        client.confirm(held.id)
        assert client.get_reservation(held.id).status == "confirmed"

        second = client.reserve({"MUG-WHT": 3})
        assert client.stock("MUG-WHT").available == before - 4
        client.release(second.id)
        assert client.get_reservation(second.id).status == "released"
        assert client.stock("MUG-WHT").available == before - 1


def test_ttl_as_seconds_or_timedelta(demo: Omsd) -> None:
    # ttl is seconds (int or float) or a timedelta; the server's expiry is that far from now.
    with omsd.Client(demo.address) as client:
        for ttl, seconds in [(90, 90), (2.5, 2.5), (timedelta(minutes=3), 180)]:
            now_ms = time.time() * 1000
            held = client.reserve([("SOCKS-3P", 1)], ttl=ttl)
            assert abs(held.expires_at_ms - (now_ms + seconds * 1000)) < 5000, ttl
        with pytest.raises(ValueError):
            client.reserve([("SOCKS-3P", 1)], ttl=0)


def test_insufficient_stock_is_typed_and_changes_nothing(demo: Omsd) -> None:
    # A cart larger than the stock raises InsufficientStock with the SKU code and what is
    # available; the cart's other lines are not held either.
    with omsd.Client(demo.address) as client:
        mugs = client.stock("MUG-WHT").available
        with pytest.raises(omsd.InsufficientStock) as refused:
            client.reserve([("MUG-WHT", 1), ("PHONE-X", 16)])
        e = refused.value
        assert (e.code, e.name, e.sku, e.available) == (108, "insufficient_stock", "PHONE-X", 15)
        assert isinstance(e, omsd.Refused) and isinstance(e, omsd.OmsdError)
        assert "PHONE-X" in str(e)
        assert client.stock("MUG-WHT").available == mugs


def test_unknown_sku_and_unknown_reservation(demo: Omsd) -> None:
    # Refusals carry the code people read: the SKU code asked for.
    with omsd.Client(demo.address) as client:
        with pytest.raises(omsd.UnknownSku) as refused:
            client.reserve([("TSHIRT-RED-XXL", 1)])
        assert refused.value.sku == "TSHIRT-RED-XXL"
        with pytest.raises(omsd.UnknownSku):
            client.stock("NOPE")
        with pytest.raises(omsd.UnknownReservation):
            client.confirm(123456789)


def partitions_of(reservation_id: int) -> int:
    """How many partitions hold a part of a reservation: the id's top 16 bits are its partition
    set (docs/ARCHITECTURE.md). Only used to check a test's premise."""
    return bin(reservation_id >> 48).count("1")


def test_idempotency_key_replays_and_refuses_another_cart(demo: Omsd) -> None:
    # The same key and cart answers the first reservation again (replayed, nothing held twice);
    # the same key with another cart raises IdempotencyKeyReused and holds nothing, whether the
    # other cart's lines live in the first one's partition or in the other. The demo runs two
    # partitions with SKU ids in definition order: CAP-BLK and TSHIRT-BLU-M share a partition,
    # MUG-WHT is in the other.
    with omsd.Client(demo.address) as client:
        before = {sku: client.stock(sku).available for sku in ("CAP-BLK", "TSHIRT-BLU-M", "MUG-WHT")}
        first = client.reserve([("CAP-BLK", 2)], idempotency_key="order-77")
        again = client.reserve([("CAP-BLK", 2)], idempotency_key="order-77")
        assert (again.id, again.replayed, first.replayed) == (first.id, True, False)
        assert partitions_of(first.id) == 1
        for cart in ([("CAP-BLK", 3)], [("TSHIRT-BLU-M", 1)], [("MUG-WHT", 1)], [("CAP-BLK", 2), ("MUG-WHT", 1)]):
            with pytest.raises(omsd.IdempotencyKeyReused) as refused:
                client.reserve(cart, idempotency_key="order-77")
            assert refused.value.code == 150 and "order-77" in str(refused.value), cart
        after = {sku: client.stock(sku).available for sku in before}
        assert after == {**before, "CAP-BLK": before["CAP-BLK"] - 2}


def test_idempotency_key_of_a_multi_partition_cart(demo: Omsd) -> None:
    # A cart whose lines live in both partitions: the same key and cart (lines in another order)
    # replays the one reservation; the same key with another quantity, or with a cart in one of
    # its partitions only, raises IdempotencyKeyReused and holds nothing more.
    with omsd.Client(demo.address) as client:
        before = {sku: client.stock(sku).available for sku in ("CAP-BLK", "MUG-WHT")}
        first = client.reserve([("MUG-WHT", 1), ("CAP-BLK", 1)], idempotency_key="order-78")
        assert partitions_of(first.id) == 2, "the premise: the cart spans both partitions"
        again = client.reserve([("CAP-BLK", 1), ("MUG-WHT", 1)], idempotency_key="order-78")
        assert (again.id, again.replayed) == (first.id, True)
        for cart in ([("MUG-WHT", 2), ("CAP-BLK", 1)], [("MUG-WHT", 1)], [("CAP-BLK", 1)]):
            with pytest.raises(omsd.IdempotencyKeyReused):
                client.reserve(cart, idempotency_key="order-78")
        results = client.reserve_batch([omsd.Cart([("CAP-BLK", 5)], idempotency_key="order-78")])
        assert isinstance(results[0], omsd.IdempotencyKeyReused)
        assert {sku: client.stock(sku).available for sku in before} == {sku: n - 1 for sku, n in before.items()}


def test_kit_line_is_answered_with_its_components(demo: Omsd) -> None:
    # GIFT-BOX is a kit: the reservation holds its components, by code.
    with omsd.Client(demo.address) as client:
        held = client.reserve([("GIFT-BOX", 1)])
        assert sorted((a.sku, a.qty) for a in held.allocations) == [("MUG-WHT", 1), ("SOCKS-3P", 2)]
        kit = client.stock("GIFT-BOX")
        assert sorted((c.sku, c.qty) for c in kit.kit) == [("MUG-WHT", 1), ("SOCKS-3P", 2)]


def test_stock_by_code_and_by_id(demo: Omsd) -> None:
    # stock() takes a code or an id and answers per warehouse, with warehouse codes.
    with omsd.Client(demo.address) as client:
        by_code = client.stock("TSHIRT-RED-XL")
        assert (by_code.sku, by_code.on_hand, by_code.available) == ("TSHIRT-RED-XL", 200, 200)
        assert {(w.warehouse, w.on_hand) for w in by_code.warehouses} == {("SH", 120), ("BJ", 80)}
        assert client.stock(by_code.sku_id) == by_code
        assert client.lookup_skus(["TSHIRT-RED-XL", "NOPE"]) == [by_code.sku_id, None]
        exported = {row["code"]: row["available"] for row in client.export_stock()}
        assert exported["TSHIRT-RED-XL"] == 200 and exported["GIFT-BOX"] == 100  # 100 MUG-WHT, 800 SOCKS-3P


def test_reserve_batch_answers_each_cart(demo: Omsd) -> None:
    # Each cart of a batch is held or refused on its own; refusals are returned, not raised.
    with omsd.Client(demo.address) as client:
        results = client.reserve_batch(
            [
                omsd.Cart([("SOCKS-3P", 1)], idempotency_key="b-1"),
                {"lines": [("PHONE-X", 99)], "ttl": 60},
                omsd.Cart({"SNEAKER-42": 1}, channel="jd", customer=5),
            ]
        )
        assert isinstance(results[0], omsd.Reserved) and isinstance(results[2], omsd.Reserved)
        assert isinstance(results[1], omsd.InsufficientStock) and results[1].sku == "PHONE-X"
        assert client.get_reservation(results[2].id).channel == 2


def test_channel_names_and_customer(demo: Omsd) -> None:
    # channel accepts the names of PROTOCOL.md 5.2 or a number; customer is stored.
    with omsd.Client(demo.address) as client:
        for name, number in [("own", 0), ("taobao", 1), ("jd", 2), ("douyin", 3)]:
            held = client.reserve([("SOCKS-3P", 1)], channel=name, customer=900001)
            view = client.get_reservation(held.id)
            assert (view.channel, view.customer) == (number, 900001)
        with pytest.raises(ValueError):
            client.reserve([("SOCKS-3P", 1)], channel="ebay")


def test_ship_and_pay_balance_states(demo: Omsd) -> None:
    # ship before confirm and pay_balance on a plain hold are state refusals; ship after confirm works.
    with omsd.Client(demo.address) as client:
        assert client.server_info is not None
        held = client.reserve([("SOCKS-3P", 1)])
        with pytest.raises(omsd.InvalidReservationState):
            client.ship(held.id)
        with pytest.raises(omsd.Refused):
            client.pay_balance(held.id)
        client.confirm(held.id)
        client.ship(held.id)
        assert client.get_reservation(held.id).status == "shipped"


def test_ping_and_server_info(demo: Omsd) -> None:
    # The handshake's HelloOk is kept: version 2, the limits the client honours.
    with omsd.Client(demo.address) as client:
        assert client.ping() >= 0
        info = client.server_info
        assert info is not None
        assert (info.version, info.max_batch) == (2, 1024)
        assert info.server.startswith("omsd")


def test_frame_above_the_server_limit_is_not_sent(demo: Omsd) -> None:
    # A request larger than max_frame_bytes raises FrameTooLarge before sending (the server
    # would close the connection); the connection stays usable.
    with omsd.Client(demo.address) as client:
        line = ("X" * 64, 1)
        carts = [omsd.Cart([line] * 64) for _ in range(300)]
        with pytest.raises(omsd.FrameTooLarge):
            client.reserve_batch(carts)
        assert client.ping() >= 0


def test_call_json_runs_admin_operations(demo: Omsd) -> None:
    # JSON-bodied operations by name: define a SKU, stock it, reserve it.
    with omsd.Client(demo.address) as client:
        sku_id = client.call_json("define_sku", {"code": "TEA-GREEN", "low_stock_threshold": 2})["id"]
        client.call_json("stock_op", {"op": "set_on_hand", "sku": "TEA-GREEN", "warehouse": "SH", "on_hand": 7})
        assert client.stock("TEA-GREEN").available == 7
        held = client.reserve([(sku_id, 7)])
        assert held.allocations[0].sku == "TEA-GREEN"
        with pytest.raises(omsd.BadRequest):
            client.call_json("define_sku", {"code": "TEA-BLACK", "threshold": 1})
        with pytest.raises(ValueError):
            client.call_json("reserve", {})


def test_wrong_address_fails_at_construction(omsd_bin) -> None:
    # Nothing listens on a fresh port: the constructor raises ConnectionLost, not applied.
    from conftest import free_port

    with pytest.raises(omsd.ConnectionLost) as lost:
        omsd.Client(f"127.0.0.1:{free_port()}", connect_timeout=2)
    assert not lost.value.maybe_applied
