"""`descent`: serve, list optimizers, inspect and delete sessions, benchmark a server."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from typing import Any

import httpx
import numpy as np

from .errors import DescentError, raise_for_problem
from .session import Session

try:
    import click
except ImportError:  # the `cli` extra is not installed
    click = None  # type: ignore[assignment]

DEFAULT_URL = "http://127.0.0.1:8000"


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain text table, columns left-aligned and padded."""
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def bench_rows(url: str, optimizer: str, dims: list[int], steps: int, encodings: list[str],
               dtype: str) -> list[list[Any]]:
    """Per (dim, encoding): server-held session, `steps` timed steps after one warm-up."""
    rows = []
    rng = np.random.default_rng(0)
    for dim in dims:
        for encoding in encodings:
            with Session.create(url, optimizer, params=np.zeros(dim), dtype=dtype, encoding=encoding) as s:
                try:
                    grads = rng.standard_normal(dim).astype(s.dtype)
                    s.step(grads)
                    latencies = []
                    started = time.perf_counter()
                    for _ in range(steps):
                        t0 = time.perf_counter()
                        s.step(grads)
                        latencies.append(time.perf_counter() - t0)
                    elapsed = time.perf_counter() - started
                finally:
                    s.delete()
            ms = np.array(latencies) * 1e3
            megabytes = 2 * dim * s.dtype.itemsize * steps / 1e6  # grads up, params down (binary sizes)
            rows.append([dim, encoding, steps, f"{steps / elapsed:.1f}", f"{np.percentile(ms, 50):.2f}",
                         f"{np.percentile(ms, 99):.2f}", f"{megabytes / elapsed:.1f}"])
    return rows


if click is not None:

    def _fail(exc: DescentError) -> None:
        raise click.ClickException(str(exc))

    @click.group()
    @click.version_option(package_name="descent-client")
    def cli() -> None:
        """Descent: gradient descent as a service."""

    @cli.command()
    @click.option("--host", help="listen address (DESCENT_HOST)")
    @click.option("--port", type=int, help="listen port (DESCENT_PORT)")
    @click.option("--workers", type=int, help="worker processes (DESCENT_WORKERS; >1 needs Redis)")
    @click.option("--store-url", help="memory:// or redis://host:port/db (DESCENT_STORE_URL)")
    def serve(host: str | None, port: int | None, workers: int | None, store_url: str | None) -> None:
        """Run the server (`python -m service`); other settings come from DESCENT_* variables."""
        if importlib.util.find_spec("service") is None or importlib.util.find_spec("service.app") is None:
            raise click.ClickException("the Descent server is not installed here (pip install the repository's "
                                       "root package, or run `make run` in it)")
        env = dict(os.environ)
        for name, value in (("HOST", host), ("PORT", port), ("WORKERS", workers), ("STORE_URL", store_url)):
            if value is not None:
                env[f"DESCENT_{name}"] = str(value)
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable, "-m", "service"], env)  # the server takes over this process

    @cli.command()
    @click.option("--url", envvar="DESCENT_URL", default=DEFAULT_URL, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="print the server's JSON")
    def optimizers(url: str, as_json: bool) -> None:
        """List the server's optimizers with their hyperparameters and state."""
        try:
            response = httpx.get(f"{url.rstrip('/')}/v1/optimizers", timeout=30)
            raise_for_problem(response)
        except DescentError as exc:
            _fail(exc)
        except httpx.HTTPError as exc:
            raise click.ClickException(f"{url}: {exc}") from None
        catalogue = response.json()
        if as_json:
            click.echo(json.dumps(catalogue, indent=2))
            return
        rows = [[o["name"], ", ".join(f"{h['name']}={json.dumps(h['default'])}" for h in o["hyperparameters"]),
                 ", ".join(o["state"] + o["state_scalars"])] for o in catalogue]
        click.echo(table(["optimizer", "hyperparameters (defaults)", "state"], rows))

    @cli.group()
    def sessions() -> None:
        """Inspect or delete a session."""

    def _attach(url: str, session_id: str, token: str) -> Session:
        try:
            return Session.attach(url, session_id, token)
        except DescentError as exc:
            _fail(exc)
        except httpx.HTTPError as exc:
            raise click.ClickException(f"{url}: {exc}") from None
        raise AssertionError("unreachable")

    session_options = [
        click.argument("session_id"),
        click.option("--token", envvar="DESCENT_TOKEN", required=True, help="the session's token (DESCENT_TOKEN)"),
        click.option("--url", envvar="DESCENT_URL", default=DEFAULT_URL, show_default=True),
    ]

    def with_session_options(fn: Any) -> Any:
        for option in reversed(session_options):
            fn = option(fn)
        return fn

    @sessions.command("get")
    @with_session_options
    def sessions_get(session_id: str, token: str, url: str) -> None:
        """Print a session's description (JSON)."""
        with _attach(url, session_id, token) as s:
            click.echo(json.dumps(s.info, indent=2))

    @sessions.command("delete")
    @with_session_options
    def sessions_delete(session_id: str, token: str, url: str) -> None:
        """Delete a session and all its state."""
        with _attach(url, session_id, token) as s:
            try:
                s.delete()
            except DescentError as exc:
                _fail(exc)
        click.echo(f"deleted {session_id}")

    @cli.command()
    @click.option("--url", envvar="DESCENT_URL", default=DEFAULT_URL, show_default=True)
    @click.option("--optimizer", default="adam", show_default=True)
    @click.option("--dims", default="1000,100000", show_default=True, help="comma-separated vector lengths")
    @click.option("--steps", default=100, show_default=True, type=click.IntRange(1))
    @click.option("--encodings", default="binary,json", show_default=True)
    @click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True)
    def bench(url: str, optimizer: str, dims: str, steps: int, encodings: str, dtype: str) -> None:
        """Step throughput and latency against a server (server-held sessions, deleted afterwards)."""
        try:
            sizes = [int(d) for d in dims.split(",") if d.strip()]
        except ValueError:
            raise click.BadParameter("--dims must be comma-separated integers") from None
        chosen = [e.strip() for e in encodings.split(",") if e.strip()]
        if not set(chosen) <= {"binary", "json"}:
            raise click.BadParameter("--encodings must name binary and/or json")
        try:
            rows = bench_rows(url, optimizer, sizes, steps, chosen, dtype)
        except DescentError as exc:
            _fail(exc)
        except httpx.HTTPError as exc:
            raise click.ClickException(f"{url}: {exc}") from None
        click.echo(f"{optimizer} {dtype} at {url}")
        click.echo(table(["dim", "encoding", "steps", "steps/s", "p50 ms", "p99 ms", "MB/s"], rows))


def main() -> None:
    if click is None:
        sys.exit("the descent command needs click: pip install 'descent-client[cli]'")
    cli()


if __name__ == "__main__":
    main()
