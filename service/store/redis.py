"""The shared store: sessions in Redis, so several workers and hosts serve the same sessions.

A session `sid` is three keys of raw bytes, `<prefix>:{<sid>}:rev|meta|blob`. The braces
are a Redis Cluster hash tag: the three keys share one slot, so the Lua scripts below
(which must name every key they touch) also run on a cluster. The rev key is the one
that says whether a session exists; every write sets all three keys and their expiry
together, inside one script, so they live and die together.

Every operation is one round trip: `create`, `replace` and a `load` that refreshes the
expiry are Lua scripts (`lua/*.lua`, each stating its KEYS, ARGV and reply), a plain
`load` is one MGET, `delete` is one DEL. Writes are atomic because Redis runs a script
without interleaving other commands; that is what makes `replace` a compare-and-set.
MGET is atomic too, and spares the blob the copies into Lua and back (half the time of
the script for a 12 MB blob).

redis-py's pure-Python packer is used on purpose: hiredis copies large arguments when
packing (see perf-notes), so it must not be installed alongside.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from service.store.base import Record, Store


def _script(name: str) -> str:
    return files(__package__).joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


def _ttl_ms(ttl_s: float) -> int:
    ms = int(ttl_s * 1000)
    if ms <= 0:  # Redis refuses an expiry of zero; so does MemoryStore
        raise ValueError(f"ttl_s must be positive, got {ttl_s!r}")
    return ms


class RedisStore(Store):
    """Sessions in the Redis at `url` (`redis://`, `rediss://` or `unix://`; db from the URL).

    `options` go to redis-py's `Redis.from_url` (timeouts, pool size, ...); the store owns
    that client's one connection pool and closes it in `close()`.
    """

    def __init__(self, url: str, *, prefix: str = "descent", **options: Any) -> None:
        if "{" in prefix or "}" in prefix:
            # A brace in the prefix would become the hash tag and put every session in one slot.
            raise ValueError(f"the key prefix must not contain braces, got {prefix!r}")
        self.prefix = prefix
        # Values are raw bytes (state vectors); never decode them.
        self._redis = aioredis.Redis.from_url(url, **{**options, "decode_responses": False})
        self._create = self._redis.register_script(_script("create"))
        self._load = self._redis.register_script(_script("load"))
        self._replace = self._redis.register_script(_script("replace"))

    def keys(self, sid: str) -> list[str]:
        """The session's keys, in the order the scripts take them: rev, meta, blob."""
        base = f"{self.prefix}:{{{sid}}}:"
        return [base + "rev", base + "meta", base + "blob"]

    async def create(self, sid: str, meta: bytes, blob: bytes, ttl_s: int) -> bool:
        return bool(await self._create(keys=self.keys(sid), args=[meta, blob, _ttl_ms(ttl_s)]))

    async def load(self, sid: str, ttl_s: int | None = None) -> Record | None:
        if ttl_s is None:
            rev, meta, blob = await self._redis.mget(self.keys(sid))
            if rev is None or meta is None or blob is None:  # a partial session is no session
                return None
            return Record(int(rev), meta, blob)
        reply = await self._load(keys=self.keys(sid), args=[_ttl_ms(ttl_s)])
        if reply is None:
            return None
        rev, meta, blob = reply
        return Record(int(rev), meta, blob)

    async def load_meta(self, sid: str) -> bytes | None:
        return await self._redis.get(self.keys(sid)[1])

    async def replace(self, sid: str, revision: int, meta: bytes, blob: bytes, ttl_s: int) -> bool:
        args = [int(revision), meta, blob, _ttl_ms(ttl_s)]
        return bool(await self._replace(keys=self.keys(sid), args=args))

    async def touch(self, sid: str, ttl_s: int) -> bool:
        ms = _ttl_ms(ttl_s)
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in self.keys(sid):
                pipe.pexpire(key, ms)
            return all(await pipe.execute())

    async def delete(self, sid: str) -> bool:
        return await self._redis.delete(*self.keys(sid)) > 0

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self._redis.aclose()
