# Descent: gradient descent as a service.
#   docker build -t descent .
#   docker run -p 8000:8000 -e DESCENT_STORE_URL=redis://host:6379/0 descent
# Two stages: the builder installs the project into a virtualenv (the source tree, build
# backend and build/ leftovers stay behind); the runtime stage copies only that venv.
# numpy, numba/llvmlite, orjson and uvloop ship manylinux wheels, so no compiler is needed.

FROM python:3.11-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY service ./service
# Runtime dependencies only: the test extra (torch, pytest, ...) stays out of the image.
RUN /opt/venv/bin/pip install --no-cache-dir .


FROM python:3.11-slim-bookworm

# DESCENT_HOST: inside a container the server must listen on all interfaces.
# NUMBA_CACHE_DIR: numba caches compiled kernels next to the module by default, and
# site-packages is not writable for the non-root user.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DESCENT_HOST=0.0.0.0 \
    DESCENT_PORT=8000 \
    NUMBA_CACHE_DIR=/tmp/numba-cache

RUN useradd --create-home --no-log-init --uid 10001 --user-group descent
COPY --from=builder /opt/venv /opt/venv

USER 10001:10001
WORKDIR /home/descent
EXPOSE 8000

# slim images have no curl; urlopen raises (exit 1) on refusal, timeout or a status >= 400.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('DESCENT_PORT', '8000') + '/healthz', timeout=3)"]

CMD ["python", "-m", "service"]
