"""python -m service: read Settings, start uvicorn with DESCENT_WORKERS processes."""

from __future__ import annotations

import os
import sys
import tempfile

import uvicorn

from .config import Settings


def main() -> None:
    settings = Settings()
    if settings.workers > 1 and settings.store_url.startswith("memory://"):
        sys.exit("DESCENT_WORKERS > 1 needs a shared store: set DESCENT_STORE_URL=redis://...")
    if settings.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Workers are separate processes: their metrics meet in files prometheus-client reads.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="descent-metrics-")
    uvicorn.run(
        "service.app:create_app", factory=True, host=settings.host, port=settings.port,
        workers=settings.workers, log_level=settings.log_level, proxy_headers=False,
    )


if __name__ == "__main__":
    main()
