"""The store contract (service/store/base.py), one suite run against every backend.

`store` is parametrised over MemoryStore and RedisStore (the Redis at `redis_url`, under
a key prefix unique to the test, whose keys are deleted afterwards), so the embedded
default and Redis are held to exactly the same behaviour. Checks that only make sense
for Redis (key names, hash tags, expiry on every key, several OS processes) follow.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
from redis.crc import key_slot

from service.store import MemoryStore, Record, RedisStore, Store, from_url

pytestmark = pytest.mark.anyio

TTL = 60
ALL_BYTES = bytes(range(256))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis.asyncio runs on asyncio only


@pytest.fixture
def prefix() -> str:
    return f"test-store-{uuid.uuid4().hex}"


@pytest.fixture
def redis_sync(redis_url: str, prefix: str) -> Iterator[redis.Redis]:
    """A plain client to inspect the keys; deletes every key under `prefix` afterwards."""
    client = redis.Redis.from_url(redis_url)
    yield client
    leftover = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if leftover:
        client.delete(*leftover)
    client.close()


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Store]:
    if request.param == "memory":
        backend: Store = MemoryStore()
    else:
        request.getfixturevalue("redis_sync")  # cleans the prefix up after the test
        backend = RedisStore(request.getfixturevalue("redis_url"), prefix=prefix)
    yield backend
    await backend.close()


def _sid() -> str:
    return uuid.uuid4().hex


# --- create / load / replace / delete ------------------------------------------------


async def test_create_then_load_returns_revision_1(store: Store) -> None:
    sid = _sid()
    assert await store.load(sid) is None
    assert await store.create(sid, b'{"m":1}', b"blob", TTL) is True
    assert await store.load(sid) == Record(1, b'{"m":1}', b"blob")
    assert await store.load(sid, TTL) == Record(1, b'{"m":1}', b"blob")


async def test_create_on_existing_id_returns_false_and_changes_nothing(store: Store) -> None:
    sid = _sid()
    assert await store.create(sid, b"meta", b"blob", TTL)
    assert await store.replace(sid, 1, b"meta2", b"blob2", TTL)
    assert await store.create(sid, b"other", b"other", TTL) is False
    assert await store.load(sid) == Record(2, b"meta2", b"blob2")


async def test_replace_increments_revision(store: Store) -> None:
    sid = _sid()
    await store.create(sid, b"m0", b"b0", TTL)
    for revision in range(1, 6):
        assert await store.replace(sid, revision, f"m{revision}".encode(), f"b{revision}".encode(), TTL)
        assert await store.load(sid) == Record(revision + 1, f"m{revision}".encode(), f"b{revision}".encode())


async def test_replace_with_stale_revision_returns_false_and_changes_nothing(store: Store) -> None:
    sid = _sid()
    await store.create(sid, b"m0", b"b0", TTL)
    assert await store.replace(sid, 1, b"m1", b"b1", TTL)
    for stale in (0, 1, 3, -1):
        assert await store.replace(sid, stale, b"lost", b"lost", TTL) is False
    assert await store.load(sid) == Record(2, b"m1", b"b1")


async def test_replace_on_missing_session_returns_false_and_creates_nothing(store: Store) -> None:
    sid = _sid()
    assert await store.replace(sid, 1, b"m", b"b", TTL) is False
    assert await store.replace(sid, 0, b"m", b"b", TTL) is False
    assert await store.load(sid) is None


async def test_delete_removes_the_session(store: Store) -> None:
    sid, other = _sid(), _sid()
    await store.create(sid, b"m", b"b", TTL)
    await store.create(other, b"m-other", b"b-other", TTL)
    assert await store.delete(sid) is True
    assert await store.load(sid) is None
    assert await store.replace(sid, 1, b"m", b"b", TTL) is False
    assert await store.delete(sid) is False
    assert await store.load(other) == Record(1, b"m-other", b"b-other")
    # The id is free again, and starts over at revision 1.
    assert await store.create(sid, b"m2", b"b2", TTL)
    assert await store.load(sid) == Record(1, b"m2", b"b2")


async def test_sessions_are_independent(store: Store) -> None:
    a, b = _sid(), _sid()
    await store.create(a, b"ma", b"ba", TTL)
    await store.create(b, b"mb", b"bb", TTL)
    assert await store.replace(a, 1, b"ma2", b"ba2", TTL)
    assert await store.load(b) == Record(1, b"mb", b"bb")
    assert await store.load(a) == Record(2, b"ma2", b"ba2")


async def test_nonpositive_ttl_is_refused(store: Store) -> None:
    sid = _sid()
    with pytest.raises(ValueError, match="ttl_s"):
        await store.create(sid, b"m", b"b", 0)
    await store.create(sid, b"m", b"b", TTL)
    with pytest.raises(ValueError, match="ttl_s"):
        await store.replace(sid, 1, b"m", b"b", -1)
    with pytest.raises(ValueError, match="ttl_s"):
        await store.load(sid, 0)
    assert await store.load(sid) == Record(1, b"m", b"b")


async def test_ping(store: Store) -> None:
    assert await store.ping() is True


# --- bytes ---------------------------------------------------------------------------


async def test_binary_safe_meta_and_blob(store: Store) -> None:
    sid = _sid()
    meta, blob = ALL_BYTES, ALL_BYTES[::-1] * 3
    await store.create(sid, meta, blob, TTL)
    assert await store.load(sid) == Record(1, meta, blob)
    await store.replace(sid, 1, blob, meta, TTL)
    assert await store.load(sid) == Record(2, blob, meta)


async def test_empty_meta_and_blob(store: Store) -> None:
    sid = _sid()
    await store.create(sid, b"", b"", TTL)
    assert await store.load(sid) == Record(1, b"", b"")


async def test_large_blob_round_trips_bit_for_bit(store: Store) -> None:
    sid = _sid()
    first, second = os.urandom(8 << 20), os.urandom(8 << 20)
    await store.create(sid, b"meta", first, TTL)
    loaded = await store.load(sid, TTL)
    assert loaded is not None and loaded.blob == first
    assert await store.replace(sid, 1, b"meta", second, TTL)
    loaded = await store.load(sid)
    assert loaded is not None and loaded.revision == 2 and loaded.blob == second


async def test_mutable_buffers_are_copied(store: Store) -> None:
    sid = _sid()
    blob = bytearray(b"before")
    await store.create(sid, b"m", blob, TTL)
    blob[:] = b"after!"
    assert await store.load(sid) == Record(1, b"m", b"before")


# --- expiry --------------------------------------------------------------------------


async def test_session_expires(store: Store) -> None:
    sid = _sid()
    await store.create(sid, b"m", b"b", 1)
    assert await store.load(sid) is not None
    await asyncio.sleep(1.2)
    assert await store.load(sid) is None
    assert await store.replace(sid, 1, b"m2", b"b2", TTL) is False
    assert await store.load(sid) is None
    assert await store.delete(sid) is False
    assert await store.create(sid, b"new", b"new", TTL) is True
    assert await store.load(sid) == Record(1, b"new", b"new")


async def test_load_with_ttl_and_replace_refresh_the_expiry(store: Store) -> None:
    by_load, by_replace = _sid(), _sid()
    start = time.monotonic()
    await store.create(by_load, b"m", b"b", 1)
    await store.create(by_replace, b"m", b"b", 1)
    await asyncio.sleep(0.6)
    assert await store.load(by_load, 1) is not None  # expires at ~1.6 s now, not 1.0 s
    assert await store.replace(by_replace, 1, b"m2", b"b2", 1)  # likewise
    await asyncio.sleep(max(0.0, start + 1.2 - time.monotonic()))
    # Past the first deadline: both alive because they were refreshed. load() without
    # a ttl must not refresh, so both are gone past the second deadline.
    assert await store.load(by_load) == Record(1, b"m", b"b")
    assert await store.load(by_replace) == Record(2, b"m2", b"b2")
    await asyncio.sleep(max(0.0, start + 1.9 - time.monotonic()))
    assert await store.load(by_load) is None
    assert await store.load(by_replace) is None


# --- concurrency ---------------------------------------------------------------------


async def _increment(store: Store, sid: str, times: int) -> int:
    """Add 1 to the counter in the blob `times` times by read-increment-CAS-retry; return the retries."""
    retries = 0
    for _ in range(times):
        while True:
            record = await store.load(sid, TTL)
            assert record is not None
            value = int.from_bytes(record.blob, "little") + 1
            await asyncio.sleep(0)  # let the other tasks in between read and write
            if await store.replace(sid, record.revision, record.meta, value.to_bytes(8, "little"), TTL):
                break
            retries += 1
    return retries


async def test_concurrent_increments_are_neither_lost_nor_doubled(store: Store) -> None:
    sid, tasks, times = _sid(), 8, 50
    await store.create(sid, b"counter", (0).to_bytes(8, "little"), TTL)
    retries = await asyncio.gather(*(_increment(store, sid, times) for _ in range(tasks)))
    record = await store.load(sid)
    assert record is not None
    assert int.from_bytes(record.blob, "little") == tasks * times
    assert record.revision == 1 + tasks * times
    assert sum(retries) > 0, "the tasks never collided: the test did not exercise compare-and-set"


def _increment_in_process(url: str, prefix: str, sid: str, tasks: int, times: int) -> int:
    async def run() -> int:
        store = RedisStore(url, prefix=prefix)
        try:
            return sum(await asyncio.gather(*(_increment(store, sid, times) for _ in range(tasks))))
        finally:
            await store.close()

    return asyncio.run(run())


async def test_concurrent_increments_from_several_processes(
    redis_url: str, prefix: str, redis_sync: redis.Redis
) -> None:
    sid, processes, tasks, times = _sid(), 3, 4, 40
    store = RedisStore(redis_url, prefix=prefix)
    await store.create(sid, b"counter", (0).to_bytes(8, "little"), TTL)
    # spawn: a fresh interpreter per worker, nothing inherited from this event loop.
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        retries = await asyncio.to_thread(
            pool.starmap, _increment_in_process, [(redis_url, prefix, sid, tasks, times)] * processes
        )
    record = await store.load(sid)
    await store.close()
    assert record is not None
    assert int.from_bytes(record.blob, "little") == processes * tasks * times
    assert record.revision == 1 + processes * tasks * times
    assert sum(retries) > 0, "the workers never collided: the test did not exercise compare-and-set"


# --- Redis: keys ---------------------------------------------------------------------


async def test_redis_keys_carry_prefix_and_hash_tag(redis_url: str, prefix: str, redis_sync: redis.Redis) -> None:
    store = RedisStore(redis_url, prefix=prefix)
    sid = _sid()
    await store.create(sid, b"meta", b"blob", TTL)
    found = sorted(redis_sync.scan_iter(match=f"{prefix}:*", count=1000))
    assert found == sorted(f"{prefix}:{{{sid}}}:{kind}".encode() for kind in ("rev", "meta", "blob"))
    assert len({key_slot(key) for key in found}) == 1
    assert redis_sync.get(f"{prefix}:{{{sid}}}:meta") == b"meta"
    assert redis_sync.get(f"{prefix}:{{{sid}}}:blob") == b"blob"
    assert redis_sync.get(f"{prefix}:{{{sid}}}:rev") == b"1"
    assert await store.delete(sid)
    assert list(redis_sync.scan_iter(match=f"{prefix}:*", count=1000)) == []
    await store.close()


async def test_redis_every_key_expires(redis_url: str, prefix: str, redis_sync: redis.Redis) -> None:
    store = RedisStore(redis_url, prefix=prefix)
    sid = _sid()
    keys = store.keys(sid)
    await store.create(sid, b"m", b"b", 30)
    assert all(25_000 < redis_sync.pttl(key) <= 30_000 for key in keys)
    await store.load(sid, 90)
    assert all(85_000 < redis_sync.pttl(key) <= 90_000 for key in keys)
    await store.load(sid)
    assert all(85_000 < redis_sync.pttl(key) <= 90_000 for key in keys)
    await store.replace(sid, 1, b"m", b"b", 300)
    assert all(295_000 < redis_sync.pttl(key) <= 300_000 for key in keys)
    await store.close()


def test_redis_prefix_with_braces_is_refused(redis_url: str) -> None:
    with pytest.raises(ValueError, match="braces"):
        RedisStore(redis_url, prefix="a{b}")


async def test_redis_ping_is_false_when_unreachable() -> None:
    store = RedisStore("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    assert await store.ping() is False
    await store.close()


# --- from_url ------------------------------------------------------------------------


async def test_from_url_memory() -> None:
    store = from_url("memory://", prefix="ignored")
    assert isinstance(store, MemoryStore)
    with pytest.raises(ValueError, match="no options"):
        from_url("memory://", max_connections=3)


async def test_from_url_redis_uses_the_db_in_the_path(
    redis_url: str, prefix: str, redis_sync: redis.Redis
) -> None:
    store = from_url(redis_url, prefix=prefix)
    assert isinstance(store, RedisStore)
    sid = _sid()
    await store.create(sid, b"m", b"b", TTL)
    assert redis_sync.exists(f"{prefix}:{{{sid}}}:rev") == 1  # same db as the plain client
    await store.close()


@pytest.mark.parametrize("url", ["rediss://127.0.0.1:6380/2", "unix:///tmp/redis.sock?db=3", "REDIS://h/1"])
async def test_from_url_other_redis_schemes(url: str) -> None:
    store = from_url(url)
    assert isinstance(store, RedisStore)
    await store.close()


@pytest.mark.parametrize("url", ["memcached://h:11211", "http://h/", "127.0.0.1:6379", "", "redis+cluster://h"])
def test_from_url_unknown_scheme(url: str) -> None:
    with pytest.raises(ValueError, match="unsupported store URL scheme"):
        from_url(url)


async def test_touch_restarts_the_expiry(store: Store) -> None:
    sid = _sid()
    assert not await store.touch(sid, 1)  # no such session
    await store.create(sid, b"m", b"b", 1)
    await asyncio.sleep(0.6)
    assert await store.touch(sid, 1)
    await asyncio.sleep(0.6)  # 1.2 s after creation: alive only because it was touched
    assert await store.load(sid) == Record(1, b"m", b"b")
    await asyncio.sleep(1.0)
    assert await store.load(sid) is None
