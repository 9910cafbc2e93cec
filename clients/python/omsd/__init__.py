from ._tables import *  # noqa: F401,F403
from .errors import ConnectionLost, OmsdError, ProtocolError, Refused, RequestTimeout, ServerError
