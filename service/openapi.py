"""python -m service.openapi: print the app's OpenAPI document (what `make openapi` commits)."""

from __future__ import annotations

import sys

import orjson

from .app import create_app
from .config import Settings


def document() -> bytes:
    spec = create_app(Settings(_env_file=None)).openapi()
    return orjson.dumps(spec, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


if __name__ == "__main__":
    sys.stdout.buffer.write(document())
