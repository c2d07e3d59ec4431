"""Session stores, chosen by URL: `memory://` (embedded, one process) or Redis (shared)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from service.store.base import Record, Store
from service.store.memory import MemoryStore
from service.store.redis import RedisStore

__all__ = ["MemoryStore", "Record", "RedisStore", "Store", "from_url"]

_REDIS_SCHEMES = ("redis", "rediss", "unix")


def from_url(url: str, **options: Any) -> Store:
    """The store for `url`: `memory://`, or `redis://host:port/db`, `rediss://...`, `unix:///path?db=n`.

    `options` go to the backend: for Redis the key `prefix` and redis-py connection options.
    An in-process dict is private to its store and needs no namespace, so `memory://`
    ignores `prefix` (one set of settings then serves every URL) and refuses anything else.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        options.pop("prefix", None)
        if options:
            raise ValueError(f"memory:// takes no options, got {sorted(options)}")
        return MemoryStore()
    if scheme in _REDIS_SCHEMES:
        return RedisStore(url, **options)
    # Name only the scheme: the rest of the URL may hold a password.
    raise ValueError(
        f"unsupported store URL scheme {scheme + '://' if scheme else '(none)'}: "
        "expected memory://, redis://, rediss:// or unix://"
    )
