"""A client generated from openapi/openapi.json by openapi-python-client drives a live server.

The generator runs offline into a temporary directory with `--fail-on-warning`, so anything
in our document it cannot turn into code (a dangling `$ref`, an unsupported construct)
fails here. Its post-generation hooks (ruff) are turned off: formatting is not under test.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "openapi" / "openapi.json"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")
PACKAGE = "descent_generated_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    out = tmp_path_factory.mktemp("codegen")
    config = out / "config.yaml"
    config.write_text("post_hooks: []\n")
    run = subprocess.run(
        [str(GENERATOR), "generate", "--path", str(DOCUMENT), "--output-path", str(out / PACKAGE),
         "--meta", "none", "--config", str(config), "--fail-on-warning"],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0 and "Warning" not in run.stdout + run.stderr, run.stdout + run.stderr
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def module(name: str) -> ModuleType:
    """A module of the generated package (after the `generated` fixture put it on sys.path)."""
    return importlib.import_module(f"{PACKAGE}.{name}")


def torch_adam_step(params: list[float], grads: list[float], lr: float) -> list[float]:
    p = torch.tensor(params, dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor(grads, dtype=torch.float64)
    torch.optim.Adam([p], lr=lr).step()
    return p.detach().tolist()


@pytest.mark.usefixtures("generated")
def test_generated_client_creates_steps_and_deletes(server) -> None:
    client_module, models = module("client"), module("models")
    create_session, get_session = module("api.sessions.create_session"), module("api.sessions.get_session")
    delete_session, step_session = module("api.sessions.delete_session"), module("api.steps.step_session")
    params, grads = [1.0, -2.0, 3.0], [0.5, -0.25, 2.0]

    anonymous = client_module.Client(base_url=server.url)
    body = models.SessionCreate(optimizer=models.SessionCreateAdam(name="adam", lr=0.1),
                                dtype=models.SessionCreateDtype.FLOAT64, params=params)
    created = create_session.sync_detailed(client=anonymous, body=body)
    assert created.status_code == 201, created.content
    session = created.parsed
    assert isinstance(session, models.SessionCreated)
    assert session.dim == 3 and session.step == 0 and session.server_held

    client = client_module.AuthenticatedClient(base_url=server.url, token=session.token)
    stepped = step_session.sync(session.id, client=client, body=models.StepSessionJsonStepRequest(grads=grads),
                                if_match='"0"')
    assert isinstance(stepped, models.StepResponse), stepped
    assert stepped.step == 1
    assert stepped.params == pytest.approx(torch_adam_step(params, grads, lr=0.1), rel=1e-12)

    refused = step_session.sync(session.id, client=client, body=models.StepSessionJsonStepRequest(grads=grads),
                                if_match='"0"')
    assert isinstance(refused, models.Problem) and refused.status == 412

    deleted = delete_session.sync_detailed(session.id, client=client)
    assert deleted.status_code == 204
    gone = get_session.sync(session.id, client=client)
    assert isinstance(gone, models.Problem) and gone.status == 404
