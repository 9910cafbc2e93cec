"""Connections of both clients against a real omsd: restarts, timeouts, API keys and roles, TLS."""

from __future__ import annotations

import asyncio
import ssl
import tempfile
from pathlib import Path

import pytest

import omsd
from conftest import Omsd, openssl_certificate

KEYS_TOML = """
[[api_keys]]
name = "shop"
key = "sk_shop_7f3a9c2e41b84d0d"
role = "storefront"

[[api_keys]]
name = "warehouse"
key = "sk_ops_0b1c2d3e4f5a6b7c"
role = "ops"
"""


def test_blocking_client_survives_a_server_restart(demo: Omsd) -> None:
    # The server restarts (SIGTERM, start on the same data directory): the client notices the
    # closed connection before its next call and reconnects, so even a non-idempotent confirm
    # goes through; while the server is down a call raises ConnectionLost, not applied.
    client = omsd.Client(demo.address, connect_timeout=2)
    connection = client._sock
    held = client.reserve([("MUG-WHT", 1)])
    assert client._sock is connection  # a live connection is kept
    demo.stop()
    with pytest.raises(omsd.ConnectionLost) as lost:
        client.confirm(held.id)
    assert not lost.value.maybe_applied
    demo.start()
    client.confirm(held.id)
    assert client.get_reservation(held.id).status == "confirmed"
    client.close()
    with pytest.raises(omsd.ConnectionLost):
        client.ping()


def test_blocking_client_without_reconnect(demo: Omsd) -> None:
    # reconnect=False: after the connection is lost every call raises ConnectionLost.
    client = omsd.Client(demo.address, reconnect=False)
    demo.stop()
    demo.start()
    with pytest.raises(omsd.ConnectionLost):
        client.ping()


def test_blocking_timeout_then_recovery(demo: Omsd) -> None:
    # A paused server: the call raises RequestTimeout after `timeout` seconds; once it resumes,
    # the client reconnects and works.
    client = omsd.Client(demo.address, timeout=0.5)
    demo.pause()
    try:
        with pytest.raises(omsd.RequestTimeout):
            client.reserve([("SOCKS-3P", 1)])
    finally:
        demo.resume()
    assert client.ping() >= 0
    client.close()


def test_api_keys_and_roles(make_omsd) -> None:
    # With keys configured: a wrong key is refused at connect (Unauthenticated); the storefront
    # key may reserve but not ship (Forbidden); the ops key may ship.
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "omsd.toml"
        config.write_text(KEYS_TOML)
        server = make_omsd("--demo", "--config", str(config))
        with pytest.raises(omsd.Unauthenticated):
            omsd.Client(server.address, api_key="sk_wrong")
        with pytest.raises(omsd.Unauthenticated):
            omsd.Client(server.address)
        shop = omsd.Client(server.address, api_key="sk_shop_7f3a9c2e41b84d0d")
        assert shop.server_info is not None and shop.server_info.role == "storefront"
        held = shop.reserve([("MUG-WHT", 1)])
        shop.confirm(held.id)
        with pytest.raises(omsd.Forbidden):
            shop.ship(held.id)
        ops = omsd.Client(server.address, api_key="sk_ops_0b1c2d3e4f5a6b7c")
        assert ops.server_info is not None and ops.server_info.role == "ops"
        ops.ship(held.id)
        assert shop.get_reservation(held.id).status == "shipped"

        async def wrong_key() -> None:
            with pytest.raises(omsd.Unauthenticated):
                await omsd.AsyncClient.connect(server.address, api_key="sk_wrong")

        asyncio.run(wrong_key())


def test_tls(make_omsd) -> None:
    # omsd serves TLS only: both clients connect trusting the certificate's PEM file (as a path
    # or an SSLContext), a client that does not trust it fails the handshake, and a plain-TCP
    # client is refused.
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = openssl_certificate(Path(tmp), "omsd.test")
        server = make_omsd("--demo", "--tls-cert", str(cert), "--tls-key", str(key))
        with omsd.Client(server.address, tls=str(cert), server_name="omsd.test") as client:
            connection = client._sock
            held = client.reserve([("MUG-WHT", 1)])
            client.release(held.id)
            # TLS records without data (session tickets) are not taken for a closed connection.
            assert client._sock is connection
        context = ssl.create_default_context(cafile=str(cert))
        with omsd.Client(server.address, tls=context) as client:  # the certificate names 127.0.0.1
            assert client.ping() >= 0
        with pytest.raises(omsd.ConnectionLost):
            omsd.Client(server.address, tls=True, server_name="omsd.test", connect_timeout=3)
        with pytest.raises(omsd.ConnectionLost):
            omsd.Client(server.address, connect_timeout=3)

        async def over_tls() -> None:
            async with omsd.AsyncClient(server.address, tls=str(cert), server_name="omsd.test") as client:
                results = await asyncio.gather(*(client.reserve([("SOCKS-3P", 1)]) for _ in range(200)))
                assert len({r.id for r in results}) == 200

        asyncio.run(over_tls())
