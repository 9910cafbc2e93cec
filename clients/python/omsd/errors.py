"""The exceptions a client raises.

Every refusal from the server is an `OmsdError` carrying the wire error body (docs/PROTOCOL.md
section 6): `code`, `name`, `message` and, when the server gave them, `available`, `sku_id`,
`sku` and `warehouse`. Each code has its own class (generated into `_tables.py` from the
document's table), under `ServerError` for codes 1..=99 (conditions of the server: busy, shutting
down, ...) or `Refused` for 100 and up (this request was refused: insufficient stock, sold out,
...). A code this client does not know yet becomes a plain `ServerError` or `Refused` by range.

Failures of the client side are `ConnectionLost`, `RequestTimeout` and `ProtocolError`.
"""

from __future__ import annotations

from typing import Optional


class OmsdError(Exception):
    """Any error from omsd or from talking to it."""

    #: the wire code of the class (None for the client-side errors)
    CODE: Optional[int] = None
    #: the wire name of the class
    NAME: Optional[str] = None

    def __init__(
        self,
        message: str,
        *,
        code: Optional[int] = None,
        name: Optional[str] = None,
        available: Optional[int] = None,
        sku_id: Optional[int] = None,
        sku: Optional[str] = None,
        warehouse: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.CODE
        self.name = name if name is not None else self.NAME
        self.available = available
        self.sku_id = sku_id
        self.sku = sku
        self.warehouse = warehouse

    def __str__(self) -> str:
        if self.code is None:
            return self.message
        return f"{self.name} ({self.code}): {self.message}"

    def __repr__(self) -> str:
        facts = [f"code={self.code!r}", f"name={self.name!r}", f"message={self.message!r}"]
        for field in ("available", "sku_id", "sku", "warehouse"):
            value = getattr(self, field)
            if value is not None:
                facts.append(f"{field}={value!r}")
        return f"{type(self).__name__}({', '.join(facts)})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, OmsdError)
        return self._facts() == other._facts()

    def __hash__(self) -> int:
        return hash(self._facts())

    def _facts(self) -> tuple:
        return (self.code, self.name, self.message, self.available, self.sku_id, self.sku, self.warehouse)


class ServerError(OmsdError):
    """A condition of the server (codes 1..=99): busy, shutting down, bad request, ..."""


class Refused(OmsdError):
    """The server refused this request (codes 100 and up): insufficient stock, sold out, ..."""


class ConnectionLost(OmsdError, ConnectionError):
    """The connection dropped, or could not be opened.

    `maybe_applied` is True when a request had been sent and no answer came: the server may or
    may not have applied it. Retry a reserve only with the same idempotency key (it then answers
    the first reservation again instead of holding stock twice).
    """

    def __init__(self, message: str, *, maybe_applied: bool = False) -> None:
        super().__init__(message)
        self.maybe_applied = maybe_applied


class RequestTimeout(OmsdError, TimeoutError):
    """No answer within the client's timeout; the request may or may not have been applied."""


class ProtocolError(OmsdError):
    """The server sent bytes this client cannot read (a bug or a different protocol version)."""


def error_from_body(
    code: int,
    name: str,
    message: str,
    available: Optional[int] = None,
    sku_id: Optional[int] = None,
    sku: Optional[str] = None,
    warehouse: Optional[str] = None,
) -> OmsdError:
    """The exception for a wire error body: the code's own class, else ServerError/Refused by range."""
    from ._tables import ERROR_CLASSES

    cls = ERROR_CLASSES.get(code) or (ServerError if code < 100 else Refused)
    return cls(message, code=code, name=name, available=available, sku_id=sku_id, sku=sku, warehouse=warehouse)
