"""Many checkouts at once over one pipelined connection (asyncio)."""

import asyncio
import os

import omsd


async def main():
    address = os.environ.get("OMSD_ADDRESS", "127.0.0.1:7700")
    async with omsd.AsyncClient(address, api_key=os.environ.get("OMSD_API_KEY")) as client:
        # 100 carts in flight together; each is held or refused on its own.
        carts = [[("SOCKS-3P", 1), ("CAP-BLK", 1)] for _ in range(100)]
        results = await asyncio.gather(
            *(client.reserve(cart, idempotency_key=f"order-{2000 + i}") for i, cart in enumerate(carts)),
            return_exceptions=True,
        )
        held = [r for r in results if isinstance(r, omsd.Reserved)]
        refused = [r for r in results if isinstance(r, omsd.InsufficientStock)]
        print(f"held {len(held)} carts, {len(refused)} refused: {refused[0].sku} ran out")
        # Payments come back: confirm the first half, release the rest.
        await asyncio.gather(*(client.confirm(r.id) for r in held[:20]))
        await asyncio.gather(*(client.release(r.id) for r in held[20:]))
        print("CAP-BLK available:", (await client.stock("CAP-BLK")).available)


asyncio.run(main())
