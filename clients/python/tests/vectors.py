"""Loads the conformance vectors (protocol/vectors/*.json) and converts between their `meaning`
objects and this client's message types (protocol/vectors/README.md describes the format)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator, List, Tuple

from omsd import wire

REPO = Path(__file__).resolve().parents[3]
VECTORS_DIR = Path(os.environ.get("OMSD_VECTORS_DIR", REPO / "protocol" / "vectors"))


def files() -> List[Path]:
    found = sorted(VECTORS_DIR.glob("*.json"))
    assert found, f"no vectors in {VECTORS_DIR}"
    return found


def valid_vectors() -> Iterator[Tuple[str, dict]]:
    for path in files():
        if path.name == "malformed.json":
            continue
        for vector in json.loads(path.read_text(encoding="utf-8"))["vectors"]:
            yield f"{path.stem}: {vector['name']}", vector


def malformed() -> dict:
    return json.loads((VECTORS_DIR / "malformed.json").read_text(encoding="utf-8"))


# meaning -> message -------------------------------------------------------------------------


def _opt(value: Any) -> Any:
    return None if value is None else int(value)


def _sku_from(meaning: dict) -> wire.SkuRef:
    return meaning["code"] if "code" in meaning else int(meaning["id"])


def _allocations_from(items: list) -> List[wire.Allocation]:
    return [wire.Allocation(a["sku"], a["warehouse"], a["qty"], a["sku_id"], a["warehouse_id"]) for a in items]


def _reserve_from(m: dict) -> wire.ReserveRequest:
    return wire.ReserveRequest(
        ttl_ms=int(m["ttl_ms"]),
        customer=int(m["customer"]),
        channel=m["channel"],
        campaign=_opt(m["campaign"]),
        idempotency_key=m["idempotency_key"],
        lines=[(_sku_from(line["sku"]), line["qty"]) for line in m["lines"]],
    )


def _reserved_from(m: dict) -> wire.Reserved:
    return wire.Reserved(
        id=int(m["id"]),
        expires_at_ms=int(m["expires_at_ms"]),
        promise_ms=_opt(m["promise_ms"]),
        replayed=m["replayed"],
        allocations=_allocations_from(m["allocations"]),
    )


def _error_from(m: dict) -> wire.ErrorBody:
    return wire.ErrorBody(m["code"], m["name"], m["message"], _opt(m["available"]), m["sku_id"], m["sku"], m["warehouse"])


def encode_payload(layout: str, m: dict) -> bytes:
    """The payload this client writes for a vector's meaning."""
    if layout == "hello":
        hello = wire.Hello(m["api_key"], m["client"], m["version"], m["features"], m["magic"].encode("ascii"))
        return wire.encode_hello(hello)
    if layout == "hello_ok":
        return wire.encode_hello_ok(wire.HelloOk(**m))
    if layout == "empty":
        assert m == {}
        return b""
    if layout == "reserve":
        return wire.encode_reserve(_reserve_from(m))
    if layout == "reserve_batch":
        return wire.encode_reserve_batch([_reserve_from(r) for r in m["reservations"]])
    if layout == "reservation_id":
        return wire.encode_reservation_id(int(m["id"]))
    if layout == "stock_query":
        return wire.encode_stock_query(_sku_from(m["sku"]))
    if layout == "reserved":
        return wire.encode_reserved(_reserved_from(m))
    if layout == "batch_result":
        items: List[wire.BatchItem] = [
            _reserved_from(i["reserved"]) if "reserved" in i else _error_from(i["refused"]) for i in m["items"]
        ]
        return wire.encode_batch_result(items)
    if layout == "error":
        return wire.encode_error(_error_from(m))
    if layout == "stock":
        return wire.encode_stock(
            wire.Stock(
                sku=m["sku"],
                sku_id=m["sku_id"],
                **{k: int(m[k]) for k in ("on_hand", "reserved", "pooled", "unavailable", "available", "incoming")},
                kit=[wire.KitComponent(c["sku"], c["sku_id"], c["qty"]) for c in m["kit"]],
                warehouses=[
                    wire.WarehouseStock(
                        warehouse=w["warehouse"],
                        warehouse_id=w["warehouse_id"],
                        **{
                            k: int(w[k])
                            for k in ("on_hand", "reserved", "pooled", "safety", "damaged", "quality_control", "available")
                        },
                    )
                    for w in m["warehouses"]
                ],
            )
        )
    if layout == "reservation":
        return wire.encode_reservation(
            wire.Reservation(
                id=int(m["id"]),
                customer=int(m["customer"]),
                created_at_ms=int(m["created_at_ms"]),
                expires_at_ms=int(m["expires_at_ms"]),
                promise_ms=_opt(m["promise_ms"]),
                campaign=_opt(m["campaign"]),
                presale_outstanding=m["presale_outstanding"],
                channel=m["channel"],
                status=m["status"],
                allocations=_allocations_from(m["allocations"]),
                parts=[
                    wire.ReservationPart(p["partition"], p["status"], _allocations_from(p["allocations"]))
                    for p in m["parts"]
                ],
            )
        )
    if layout == "subscribe":
        return wire.encode_subscribe(wire.Subscribe(int(m["from_lsn"]), _opt(m["partition"]), m["bootstrap"]))
    if layout == "replica_ack":
        return wire.encode_replica_ack(wire.ReplicaAck(m["partition"], int(m["durable_lsn"])))
    if layout == "log_records":
        records = [wire.LogRecord(int(r["lsn"]), r["record_type"], bytes.fromhex(r["payload"])) for r in m["records"]]
        return wire.encode_log_records(wire.LogRecords(m["partition"], int(m["durable_lsn"]), records))
    if layout == "snapshot_chunk":
        chunk = wire.SnapshotChunk(m["partition"], int(m["lsn"]), int(m["offset"]), int(m["total"]), bytes.fromhex(m["data"]))
        return wire.encode_snapshot_chunk(chunk)
    if layout == "json":
        return wire.encode_json(m["body"])
    raise AssertionError(f"unknown layout {layout}")


# message -> meaning -------------------------------------------------------------------------


def _s(value: Any) -> Any:
    return None if value is None else str(value)


def _sku_meaning(sku: wire.SkuRef) -> dict:
    return {"code": sku} if isinstance(sku, str) else {"id": sku}


def _allocations_meaning(allocations: List[wire.Allocation]) -> list:
    return [
        {"sku_id": a.sku_id, "warehouse_id": a.warehouse_id, "qty": a.qty, "sku": a.sku, "warehouse": a.warehouse}
        for a in allocations
    ]


def _reserve_meaning(r: wire.ReserveRequest) -> dict:
    return {
        "ttl_ms": str(r.ttl_ms),
        "customer": str(r.customer),
        "channel": r.channel,
        "campaign": r.campaign,
        "idempotency_key": r.idempotency_key,
        "lines": [{"qty": qty, "sku": _sku_meaning(sku)} for sku, qty in r.lines],
    }


def _reserved_meaning(r: wire.Reserved) -> dict:
    return {
        "id": str(r.id),
        "expires_at_ms": str(r.expires_at_ms),
        "promise_ms": _s(r.promise_ms),
        "replayed": r.replayed,
        "allocations": _allocations_meaning(r.allocations),
    }


def _error_meaning(e: wire.ErrorBody) -> dict:
    return {
        "code": e.code,
        "name": e.name,
        "message": e.message,
        "available": _s(e.available),
        "sku_id": e.sku_id,
        "sku": e.sku,
        "warehouse": e.warehouse,
    }


def meaning_of(layout: str, message: Any) -> Any:
    """A decoded message written the way the vectors write meanings."""
    if layout == "hello":
        return {
            "magic": message.magic.decode("ascii"),
            "version": message.version,
            "features": message.features,
            "api_key": message.api_key,
            "client": message.client,
        }
    if layout == "hello_ok":
        return dict(message.__dict__)
    if layout == "empty":
        assert message is None
        return {}
    if layout == "reserve":
        return _reserve_meaning(message)
    if layout == "reserve_batch":
        return {"reservations": [_reserve_meaning(r) for r in message]}
    if layout == "reservation_id":
        return {"id": str(message)}
    if layout == "stock_query":
        return {"sku": _sku_meaning(message)}
    if layout == "reserved":
        return _reserved_meaning(message)
    if layout == "batch_result":
        return {
            "items": [
                {"reserved": _reserved_meaning(i)} if isinstance(i, wire.Reserved) else {"refused": _error_meaning(i)}
                for i in message
            ]
        }
    if layout == "error":
        return _error_meaning(message)
    if layout == "stock":
        s = message
        return {
            "sku_id": s.sku_id,
            **{k: str(getattr(s, k)) for k in ("on_hand", "reserved", "pooled", "unavailable", "available", "incoming")},
            "sku": s.sku,
            "kit": [{"qty": c.qty, "sku_id": c.sku_id, "sku": c.sku} for c in s.kit],
            "warehouses": [
                {
                    "warehouse_id": w.warehouse_id,
                    **{
                        k: str(getattr(w, k))
                        for k in ("on_hand", "reserved", "pooled", "safety", "damaged", "quality_control", "available")
                    },
                    "warehouse": w.warehouse,
                }
                for w in s.warehouses
            ],
        }
    if layout == "reservation":
        r = message
        return {
            "id": str(r.id),
            "customer": str(r.customer),
            "created_at_ms": str(r.created_at_ms),
            "expires_at_ms": str(r.expires_at_ms),
            "promise_ms": _s(r.promise_ms),
            "campaign": r.campaign,
            "presale_outstanding": r.presale_outstanding,
            "channel": r.channel,
            "status": r.status,
            "allocations": _allocations_meaning(r.allocations),
            "parts": [
                {"partition": p.partition, "status": p.status, "allocations": _allocations_meaning(p.allocations)}
                for p in r.parts
            ],
        }
    if layout == "subscribe":
        return {"from_lsn": str(message.from_lsn), "partition": message.partition, "bootstrap": message.bootstrap}
    if layout == "replica_ack":
        return {"partition": message.partition, "durable_lsn": str(message.durable_lsn)}
    if layout == "log_records":
        return {
            "partition": message.partition,
            "durable_lsn": str(message.durable_lsn),
            "records": [
                {"lsn": str(r.lsn), "record_type": r.record_type, "payload": r.payload.hex()} for r in message.records
            ],
        }
    if layout == "snapshot_chunk":
        c = message
        return {
            "partition": c.partition,
            "lsn": str(c.lsn),
            "offset": str(c.offset),
            "total": str(c.total),
            "data": c.data.hex(),
        }
    if layout == "json":
        return {"body": message}
    raise AssertionError(f"unknown layout {layout}")
