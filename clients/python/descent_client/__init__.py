"""Python client for Descent, gradient descent as a service.

`Session` / `AsyncSession` talk to one optimizer session; `descent_client.torch.RemoteOptimizer`
is a drop-in `torch.optim.Optimizer` backed by the server; `descent` is the command line.
"""

from .core import Retry
from .errors import (
    Busy,
    DescentError,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    ResponseLost,
    ServerError,
    Unauthorized,
    UnsupportedMediaType,
)
from .session import AsyncSession, Session

__version__ = "0.1.0"

__all__ = [
    "AsyncSession", "Busy", "DescentError", "Forbidden", "InvalidInput", "NotFound", "PayloadTooLarge",
    "PreconditionFailed", "ResponseLost", "Retry", "ServerError", "Session", "Unauthorized",
    "UnsupportedMediaType",
]
