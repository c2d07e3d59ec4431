"""The HTTP service benchmark: throughput, latency beside its parts, and peak memory.

Run by `make bench` (or `.venv/bin/python bench/service.py`); prints a Markdown report
and writes it to bench/results/service.md. It starts its own servers (`python -m
service`) on the Redis at DESCENT_TEST_REDIS_URL (default redis://127.0.0.1:6379/15),
under a key prefix of its own that it deletes at the end, or on a private redis-server
when none answers.

1. Throughput: dim-100 float32 Adam steps (binary in and out, server-held, 16
   sessions spread over 16 keep-alive connections so no one session serialises the
   load) against GET /healthz, same generator, same run; 1 worker, then 2 workers.
   Generator: `wrk` when installed, else an asyncio raw-HTTP client (uvloop when
   available) with keep-alive connections.
2. Latency of one dim-1e6 float32 Adam step, binary and JSON (median of 20), beside
   the sum of its parts measured in the same run: a Redis SET+GET of the session's
   blob (redis-py asyncio, as the server does), the engine step (`optim.apply`), an
   HTTP echo of the same request body through uvicorn, and for JSON the codec
   (orjson parse + numpy conversion + orjson encode).
3. Peak memory (VmHWM of the worker process) across one dim-1e7 float32 client-held
   binary Adam step (params then grads in, params out); the high-water mark is reset
   through /proc/<pid>/clear_refs just before the step, where the kernel allows it.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import redis
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `service` importable when run as a script

from service import optim  # noqa: E402
from service.codec import dump_json, parse_json, vector_from_json  # noqa: E402
from service.store.redis import RedisStore  # noqa: E402

OCTET = "application/octet-stream"
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"
RESULTS = ROOT / "bench" / "results" / "service.md"
# The servers' own output (wrk's closing connections mid-request leave ClientDisconnect traces there).
SERVER_LOG = Path(tempfile.gettempdir()) / f"descent-bench-servers-{os.getpid()}.log"


# -- infrastructure: Redis, servers, a plain keep-alive client ---------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


@contextmanager
def redis_url() -> Iterator[str]:
    """The test Redis when it answers, else a private redis-server for this run."""
    url = os.environ.get("DESCENT_TEST_REDIS_URL", DEFAULT_REDIS)
    if answers(url):
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit(f"no Redis answers at {url} and redis-server is not installed")
    port, workdir = free_port(), tempfile.mkdtemp(prefix="descent-bench-redis-")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", workdir], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/15"
    try:
        for _ in range(100):
            if answers(url):
                break
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Server:
    port: int
    proc: subprocess.Popen

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: uvicorn's spawned children, or the process itself."""
        kids = []
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
                spawned = b"spawn_main" in Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if ppid == self.proc.pid and spawned:
                kids.append(int(entry))
        return kids or [self.proc.pid]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def wait_http(port: int, proc: subprocess.Popen, path: str = "/healthz", timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server on port {port} exited with {proc.returncode}; see {SERVER_LOG}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit(f"server on port {port} did not answer within {timeout_s} s")


def start_service(store_url: str, prefix: str, workers: int) -> Server:
    port = free_port()
    env = {**os.environ, "DESCENT_STORE_URL": store_url, "DESCENT_REDIS_PREFIX": prefix,
           "DESCENT_WORKERS": str(workers), "DESCENT_HOST": "127.0.0.1", "DESCENT_PORT": str(port),
           "DESCENT_LOG_LEVEL": "warning"}
    with SERVER_LOG.open("ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "service"], env=env, cwd=ROOT, stdout=log, stderr=log)
    wait_http(port, proc)
    return Server(port, proc)


def start_echo() -> Server:
    port = free_port()
    with SERVER_LOG.open("ab") as log:
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--echo-port", str(port)],
                                cwd=ROOT, stdout=log, stderr=log)
    wait_http(port, proc, "/")
    return Server(port, proc)


async def echo_app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    """Raw ASGI: answer the request body, joined from its chunks as Starlette does."""
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", OCTET.encode()), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class Client:
    """One keep-alive HTTP/1.1 connection (http.client: little client-side cost)."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method: str, path: str, body: bytes | None = None, **headers: str) -> tuple[int, bytes, dict]:
        hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
        self.conn.request(method, path, body=body, headers=hdrs)
        response = self.conn.getresponse()
        return response.status, response.read(), dict(response.getheaders())

    def create(self, **body: object) -> tuple[str, str]:
        status, data, _ = self.call("POST", "/v1/sessions", orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
                                    Content_Type="application/json")
        assert status == 201, data[:500]
        created = orjson.loads(data)
        return created["id"], f"Bearer {created['token']}"

    def close(self) -> None:
        self.conn.close()


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


# -- load generators ----------------------------------------------------------------------


@dataclass
class Target:
    """What one request is: method, path, headers, body."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def lua_string(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return '"' + "".join(f"\\{b:03d}" for b in raw) + '"'


def run_wrk(port: int, targets: list[Target], connections: int, seconds: float, threads: int = 2) -> tuple[float, int]:
    """Requests/s and non-2xx count; each wrk thread cycles through `targets` from its own offset."""
    entries = ",\n".join(
        "{%s, %s, {%s}, %s}" % (lua_string(t.method), lua_string(t.path),
                                ", ".join(f"[{lua_string(k)}] = {lua_string(v)}" for k, v in t.headers.items()),
                                lua_string(t.body))
        for t in targets)
    script = f"""
local targets = {{{entries}}}
local n = #targets
local index = 0
local threads = 0
setup = function(thread) thread:set("offset", threads); threads = threads + 1 end
init = function(args) index = (offset or 0) * math.floor(n / {threads}) end
request = function()
  index = index + 1
  local t = targets[(index % n) + 1]
  return wrk.format(t[1], t[2], t[3], t[4])
end
"""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", f.name,
                              f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(f.name)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    if errors:
        print(f"  wrk: {errors[0]}", file=sys.stderr)
    return rate, int(bad[1]) if bad else 0


async def _raw_connection(port: int, requests: list[bytes], offset: int, until: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = offset
    try:
        while time.perf_counter() < until:
            writer.write(requests[i % len(requests)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length:\s*(\d+)", head)
            await reader.readexactly(int(length[1]) if length else 0)
            counts[0 if head[9:10] == b"2" else 1] += 1
    finally:
        writer.close()


def run_asyncio(port: int, targets: list[Target], connections: int, seconds: float) -> tuple[float, int]:
    """The fallback generator: keep-alive connections in one event loop, raw HTTP/1.1."""
    requests = [
        (f"{t.method} {t.path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(t.body)}\r\n"
         + "".join(f"{k}: {v}\r\n" for k, v in t.headers.items()) + "\r\n").encode() + t.body
        for t in targets
    ]
    counts = [0, 0]

    async def main() -> float:
        until = time.perf_counter() + seconds
        started = time.perf_counter()
        step = max(1, len(requests) // connections)
        await asyncio.gather(*(_raw_connection(port, requests, c * step, until, counts) for c in range(connections)))
        return time.perf_counter() - started

    try:
        import uvloop
        elapsed = uvloop.run(main())
    except ImportError:
        elapsed = asyncio.run(main())
    return sum(counts) / elapsed, counts[1]


@dataclass
class Rate:
    """One load run: requests/s, and the CPU the server's workers and Redis spent per request."""

    per_s: float
    server_cpu_ms: float
    redis_cpu_ms: float


def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of `pids` so far (/proc/<pid>/stat fields 14 and 15)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def redis_cpu_s(url: str) -> float:
    info = redis.Redis.from_url(url).info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


@dataclass
class Generator:
    name: str
    run: Callable[[int, list[Target], int, float], tuple[float, int]]

    def rate(self, server: Server, store_url: str, targets: list[Target], connections: int, seconds: float) -> Rate:
        self.run(server.port, targets, connections, 1)  # warm-up
        pids = server.worker_pids()
        cpu, rcpu = cpu_s(pids), redis_cpu_s(store_url)
        rate, bad = self.run(server.port, targets, connections, seconds)
        if bad:
            sys.exit(f"{bad} requests failed during the load run")
        count = rate * seconds
        return Rate(rate, 1000 * (cpu_s(pids) - cpu) / count, 1000 * (redis_cpu_s(store_url) - rcpu) / count)


def pick_generator(choice: str) -> Generator:
    if choice == "wrk" or (choice == "auto" and shutil.which("wrk")):
        return Generator("wrk 4 (2 threads)", run_wrk)
    return Generator("asyncio raw HTTP/1.1, keep-alive (in the bench process)", run_asyncio)


# -- measurements ---------------------------------------------------------------------------


def throughput(server: Server, store_url: str, gen: Generator, connections: int, seconds: float) -> tuple[Rate, Rate]:
    """(Adam dim-100 float32 steps/s over `connections` sessions, /healthz requests/s)."""
    client = Client(server.port)
    rng = np.random.default_rng(0)
    targets = []
    for _ in range(connections):
        sid, auth = client.create(optimizer={"name": "adam"}, dtype="float32",
                                  params=rng.standard_normal(100).astype(np.float32))
        grads = (rng.standard_normal(100) * 1e-3).astype("<f4").tobytes()
        targets.append(Target("POST", f"/v1/sessions/{sid}/step",
                              {"Authorization": auth, "Content-Type": OCTET, "Accept": OCTET}, grads))
    client.close()
    steps = gen.rate(server, store_url, targets, connections, seconds)
    health = gen.rate(server, store_url, [Target("GET", "/healthz")], connections, seconds)
    return steps, health


@dataclass
class Latency:
    step_binary: float
    step_json: float
    redis: float
    engine: float
    echo_binary: float
    echo_json: float
    json_codec: float
    blob_bytes: int
    body_binary: int
    body_json: int
    store: float  # the store's load + replace of the blob (a reference, not a part)


def latency(server: Server, echo: Server, store_url: str, prefix: str, dim: int, repeats: int) -> Latency:
    rng = np.random.default_rng(1)
    params = rng.standard_normal(dim).astype(np.float32)
    grads = (rng.standard_normal(dim) * 1e-3).astype(np.float32)
    body_binary = grads.astype("<f4").tobytes()
    body_json = orjson.dumps({"grads": grads}, option=orjson.OPT_SERIALIZE_NUMPY)
    client = Client(server.port)
    sid, auth = client.create(optimizer={"name": "adam"}, dtype="float32", params=params)
    path = f"/v1/sessions/{sid}/step"

    def step(body: bytes, media: str) -> None:
        status, data, _ = client.call("POST", path, body, Authorization=auth, Content_Type=media, Accept=media)
        assert status == 200, data[:300]

    step_binary = median_ms(lambda: step(body_binary, OCTET), repeats)
    step_json = median_ms(lambda: step(body_json, "application/json"), repeats)
    blob_bytes = redis.Redis.from_url(store_url).strlen(f"{prefix}:{{{sid}}}:blob")
    client.close()

    echo_client = Client(echo.port)

    def echo_once(body: bytes) -> None:
        status, data, _ = echo_client.call("POST", "/", body, Content_Type=OCTET)
        assert status == 200 and len(data) == len(body)

    echo_binary = median_ms(lambda: echo_once(body_binary), repeats)
    echo_json = median_ms(lambda: echo_once(body_json), repeats)
    echo_client.close()

    async def redis_round_trips() -> tuple[float, float]:
        """(SET+GET of a blob that size, the store's own load+replace of it), medians in ms."""
        r = aioredis.Redis.from_url(store_url)
        store = RedisStore(store_url, prefix=prefix)
        key, blob = f"{prefix}:bench-blob", os.urandom(blob_bytes)
        await store.create("bench-store", b"{}", blob, 600)
        plain, stored = [], []
        for _ in range(repeats + 2):
            started = time.perf_counter()
            await r.set(key, blob)
            assert len(await r.get(key)) == blob_bytes
            plain.append(time.perf_counter() - started)
            started = time.perf_counter()
            record = await store.load("bench-store")
            assert await store.replace("bench-store", record.revision, record.meta, blob, 600)
            stored.append(time.perf_counter() - started)
        await r.delete(key)
        await store.delete("bench-store")
        await r.aclose()
        await store.close()
        return 1000 * statistics.median(plain[2:]), 1000 * statistics.median(stored[2:])

    redis_ms, store_ms = asyncio.run(redis_round_trips())

    opt = optim.get("adam")
    hp = opt.resolve({})
    state, p = opt.init(dim, np.dtype(np.float32), hp), params.copy()
    engine_ms = median_ms(lambda: optim.apply(opt, hp, p, grads, state), repeats)

    def json_codec() -> None:
        data = parse_json(body_json)
        vector_from_json(data["grads"], "grads", dim, np.dtype("<f4"), dim)
        dump_json({"params": params, "step": 1, "skipped": False})

    codec_ms = median_ms(json_codec, max(5, repeats // 2))
    return Latency(step_binary, step_json, redis_ms, engine_ms, echo_binary, echo_json, codec_ms,
                   blob_bytes, len(body_binary), len(body_json), store_ms)


def status_kb(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise KeyError(name)


@dataclass
class Memory:
    rss_before: float
    hwm_before: float
    hwm_after: float
    reset: bool
    vector_mb: float


def peak_memory(server: Server, dim: int) -> Memory:
    """VmHWM of the one worker across a client-held binary Adam step of `dim` float32."""
    (pid,) = server.worker_pids()
    client = Client(server.port)
    small, small_auth = client.create(optimizer={"name": "adam"}, dim=100, dtype="float32")
    status, data, _ = client.call("POST", f"/v1/sessions/{small}/step", np.zeros(200, "<f4").tobytes(),
                                  Authorization=small_auth, Content_Type=OCTET, Accept=OCTET)
    assert status == 200, data  # the kernel is loaded; what follows measures the step only
    sid, auth = client.create(optimizer={"name": "adam"}, dim=dim, dtype="float32")
    rng = np.random.default_rng(2)
    body = rng.standard_normal(dim).astype("<f4").tobytes() + (rng.standard_normal(dim) * 1e-3).astype("<f4").tobytes()
    try:  # "5" resets the peak RSS to the current RSS (Linux >= 4.0)
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        reset = True
    except OSError:
        reset = False
    rss, hwm = status_kb(pid, "VmRSS"), status_kb(pid, "VmHWM")
    status, data, _ = client.call("POST", f"/v1/sessions/{sid}/step", body,
                                  Authorization=auth, Content_Type=OCTET, Accept=OCTET)
    assert status == 200 and len(data) == 4 * dim, data[:300]
    after = status_kb(pid, "VmHWM")
    client.close()
    return Memory(rss / 1024, hwm / 1024, after / 1024, reset, 4 * dim / 2**20)


# -- report ---------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def report(gen: Generator, one: tuple[Rate, Rate], two: tuple[Rate, Rate], lat: Latency, mem: Memory,
           connections: int, seconds: float, lat_dim: int, mem_dim: int, repeats: int, started: float) -> str:
    sum_binary = lat.redis + lat.engine + lat.echo_binary
    sum_json = lat.redis + lat.engine + lat.echo_json + lat.json_codec
    growth = mem.hwm_after - mem.rss_before
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        "# Service benchmark",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average before the run: {load}. Load generator: {gen.name}. Figures move 10-50% "
        "between runs on a shared machine; compare the ratios, measured side by side.",
        "",
        f"## Throughput: Adam, dim 100, float32, binary; {connections} connections over {connections} sessions, "
        f"{seconds:g} s each",
        "",
        "| workers | steps/s | /healthz requests/s | steps / healthz (target >= 40%) "
        "| server CPU per step / per healthz | Redis CPU per step |",
        "|---|---|---|---|---|---|",
        *(f"| {w} | {st.per_s:,.0f} | {h.per_s:,.0f} | {st.per_s / h.per_s:.0%}"
          f"{f' ({verdict(st.per_s / h.per_s >= 0.4)})' if w == 1 else ''} "
          f"| {st.server_cpu_ms:.2f} ms / {h.server_cpu_ms:.2f} ms | {st.redis_cpu_ms:.3f} ms |"
          for w, (st, h) in ((1, one), (2, two))),
        "",
        f"From 1 to 2 workers, steps/s grow {two[0].per_s / one[0].per_s:.2f}x (the generator and Redis "
        "share the same cores). CPU per request is summed over the workers and does not depend on how "
        "busy the machine is; on a quiet machine the rate ratio tends to the inverse of the CPU ratio.",
        "",
        f"## Latency: one Adam step, dim {lat_dim:.0e}, float32, 1 worker (median of {repeats}, ms)",
        "",
        "| | binary | JSON |",
        "|---|---|---|",
        f"| **step over HTTP** | **{lat.step_binary:.1f}** | **{lat.step_json:.1f}** |",
        f"| Redis SET+GET of the {lat.blob_bytes / 2**20:.1f} MB blob (redis-py asyncio) | {lat.redis:.1f} | {lat.redis:.1f} |",
        f"| engine step (`optim.apply`) | {lat.engine:.1f} | {lat.engine:.1f} |",
        f"| HTTP echo of the request body ({lat.body_binary / 2**20:.1f} MB / {lat.body_json / 2**20:.1f} MB, uvicorn) "
        f"| {lat.echo_binary:.1f} | {lat.echo_json:.1f} |",
        f"| JSON codec (orjson parse + numpy + orjson encode) | - | {lat.json_codec:.1f} |",
        f"| sum of the parts | {sum_binary:.1f} | {sum_json:.1f} |",
        f"| for reference, not in the sum: the store's own load + replace of the blob "
        f"| {lat.store:.1f} | {lat.store:.1f} |",
        f"| step / sum (target <= 2x) | {lat.step_binary / sum_binary:.2f}x ({verdict(lat.step_binary <= 2 * sum_binary)}) "
        f"| {lat.step_json / sum_json:.2f}x ({verdict(lat.step_json <= 2 * sum_json)}) |",
        "",
        f"## Peak memory: one client-held binary Adam step, dim {mem_dim:.0e}, float32 (1 worker)",
        "",
        f"The vector is {mem.vector_mb:.0f} MB; the body is params then grads ({2 * mem.vector_mb:.0f} MB), "
        f"the stored state 2 vectors. VmHWM {'reset to VmRSS just before the step' if mem.reset else 'not resettable here: it includes earlier peaks'}.",
        "",
        "| VmRSS before | VmHWM before | VmHWM after | after / vector | (after - RSS before) / vector (target <= 10x) |",
        "|---|---|---|---|---|",
        f"| {mem.rss_before:.0f} MB | {mem.hwm_before:.0f} MB | {mem.hwm_after:.0f} MB | "
        f"{mem.hwm_after / mem.vector_mb:.1f}x | {growth / mem.vector_mb:.1f}x ({verdict(growth <= 10 * mem.vector_mb)}) |",
        "",
        f"Whole benchmark: {time.monotonic() - started:.0f} s.",
    ]
    return "\n".join(lines) + "\n"


def drop_prefix(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generator", choices=("auto", "wrk", "asyncio"), default="auto")
    parser.add_argument("--seconds", type=int, default=5, help="length of each load run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=20, help="samples behind each median")
    parser.add_argument("--latency-dim", type=int, default=1_000_000)
    parser.add_argument("--memory-dim", type=int, default=10_000_000)
    parser.add_argument("--echo-port", type=int, help=argparse.SUPPRESS)  # internal: serve the echo app
    args = parser.parse_args()
    if args.echo_port:
        import uvicorn
        uvicorn.run(echo_app, host="127.0.0.1", port=args.echo_port, log_level="warning", lifespan="off")
        return

    started = time.monotonic()
    gen = pick_generator(args.generator)
    servers: list[Server] = []
    with redis_url() as url:
        prefix = f"descent-bench-{uuid.uuid4().hex[:8]}"
        try:
            print(f"throughput, 1 worker ({gen.name}) ...", file=sys.stderr)
            servers.append(start_service(url, prefix, 1))
            one = throughput(servers[-1], url, gen, args.connections, args.seconds)
            print(f"latency at dim {args.latency_dim} ...", file=sys.stderr)
            servers.append(start_echo())
            lat = latency(servers[0], servers[-1], url, prefix, args.latency_dim, args.repeats)
            for server in servers:
                server.stop()
            servers.clear()
            print("throughput, 2 workers ...", file=sys.stderr)
            servers.append(start_service(url, prefix, 2))
            two = throughput(servers[-1], url, gen, args.connections, args.seconds)
            servers.pop().stop()
            print(f"peak memory at dim {args.memory_dim} ...", file=sys.stderr)
            servers.append(start_service(url, prefix, 1))
            mem = peak_memory(servers[-1], args.memory_dim)
        finally:
            for server in servers:
                server.stop()
            drop_prefix(url, prefix)
    text = report(gen, one, two, lat, mem, args.connections, args.seconds, args.latency_dim, args.memory_dim,
                  args.repeats, started)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)
    print(f"server logs: {SERVER_LOG}", file=sys.stderr)


if __name__ == "__main__":
    main()
