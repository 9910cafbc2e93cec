"""A checkout against omsd: hold the cart, confirm on payment, release on cancel."""

import os

import omsd

client = omsd.Client(os.environ.get("OMSD_ADDRESS", "127.0.0.1:7700"), api_key=os.environ.get("OMSD_API_KEY"))


def start_checkout(order_number, cart):
    """Hold the cart's units for 15 minutes while the customer pays; None when out of stock."""
    try:
        held = client.reserve(cart, ttl=15 * 60, idempotency_key=f"order-{order_number}")
    except omsd.InsufficientStock as e:
        print(f"order {order_number}: only {e.available} of {e.sku} left")
        return None
    for a in held.allocations:
        print(f"order {order_number}: held {a.qty} x {a.sku} in {a.warehouse}")
    return held.id


# The customer pays: confirm, and the units are kept for fulfilment.
reservation = start_checkout("1001", [("TSHIRT-RED-XL", 2), ("MUG-WHT", 1)])
# A retry with the same key (a timeout, a double click) answers the same reservation again.
assert client.reserve([("TSHIRT-RED-XL", 2), ("MUG-WHT", 1)], idempotency_key="order-1001").id == reservation
client.confirm(reservation)
print("order 1001:", client.get_reservation(reservation).status)

# Another customer cancels: release, and the units go back on sale.
reservation = start_checkout("1002", [("MUG-WHT", 1)])
client.release(reservation)
print("order 1002:", client.get_reservation(reservation).status)

# A cart larger than the stock is refused as a whole: nothing is held.
start_checkout("1003", [("MUG-WHT", 1), ("PHONE-X", 1000)])
print("MUG-WHT available:", client.stock("MUG-WHT").available)
client.close()
