"""Python client for omsd, the order and stock-reservation engine (wire protocol v2).

    import omsd
    client = omsd.Client("127.0.0.1:7700", api_key=None)
    held = client.reserve([("MUG-WHT", 1)], ttl=900, idempotency_key="order-1001")
    client.confirm(held.id)

`omsd.Client` blocks; `omsd.AsyncClient` is the asyncio client with pipelining. Refusals are
exceptions, one class per wire error code (`omsd.InsufficientStock` with `.available`,
`omsd.SoldOut`, `omsd.IdempotencyKeyReused`, ...), all under `omsd.OmsdError`. The codec is
`omsd.wire` (no I/O). The package has no dependencies outside the standard library.
"""

from ._calls import DEFAULT_TTL, Cart
from ._tables import *  # noqa: F401,F403  (one exception class per wire error code)
from ._tables import ERROR_CLASSES, __all__ as _error_class_names
from .aio import AsyncClient
from .client import Client
from .errors import ConnectionLost, OmsdError, ProtocolError, Refused, RequestTimeout, ServerError
from .version import __version__
from .wire import (
    Allocation,
    HelloOk,
    KitComponent,
    Reservation,
    ReservationPart,
    Reserved,
    Stock,
    WarehouseStock,
)

__all__ = [
    "Client",
    "AsyncClient",
    "Cart",
    "DEFAULT_TTL",
    "Allocation",
    "HelloOk",
    "KitComponent",
    "Reservation",
    "ReservationPart",
    "Reserved",
    "Stock",
    "WarehouseStock",
    "OmsdError",
    "ServerError",
    "Refused",
    "ConnectionLost",
    "RequestTimeout",
    "ProtocolError",
    "ERROR_CLASSES",
    "__version__",
    *_error_class_names,
]

# Show the exceptions as omsd.InsufficientStock (where users import them from) in tracebacks.
for _cls in (OmsdError, ServerError, Refused, ConnectionLost, RequestTimeout, ProtocolError, *ERROR_CLASSES.values()):
    _cls.__module__ = __name__
del _cls
