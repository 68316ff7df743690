"""Fixtures for the HTTP service: one real service (SQLite in a temp dir, real models) per session.

The session's service runs a test policy (identification on) and has one API key per role.
Tests name their galleries uniquely, so they can share it in any order.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pytest

from .apihelp import POLICY, Api, ServerHandle

# Starlette's TestClient warns that it prefers a newer httpx; the client works as is.
warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient.*")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("filterwarnings", "ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture(scope="session")
def recognizers():
    """Two loaded copies of the default models (one per model worker), shared by every test app."""
    from faceledger import Recognizer

    return [Recognizer(), Recognizer()]


@pytest.fixture(scope="session")
def make_server(tmp_path_factory, recognizers):
    """Build a service app on a fresh data directory: ``make_server(policy=..., **settings)``."""
    from fastapi.testclient import TestClient

    from faceledger.server import create_app, load_settings

    handles: list[ServerHandle] = []

    def make(policy: str | None = POLICY, *, data: Path | None = None, **settings) -> ServerHandle:
        """A service on a fresh data directory (or on ``data``, another service's, to start it again).
        It answers once its galleries are loaded for search, as a load balancer would wait."""
        data = data or tmp_path_factory.mktemp("service")
        if policy is not None:
            (data / "policy.toml").write_text(policy)
        values = {"retention_every_hours": 0, "rate_limit_per_minute": 0, "model_workers": 2, **settings}
        conf = load_settings(env={}, data_dir=data, **values)
        app = create_app(conf, recognizers=recognizers)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        handle = ServerHandle(app, client, data)
        handles.append(handle)
        deadline = time.monotonic() + 120
        while handle.service.warming.state == "loading" and time.monotonic() < deadline:
            time.sleep(0.01)
        return handle

    yield make
    for h in handles:
        h.client.__exit__(None, None, None)
        h.service.close()


@pytest.fixture(scope="session")
def server(make_server) -> ServerHandle:
    """The shared service, with keys for: admin, carl (enroller), vera (verifier), ines (investigator),
    rita and rob (reviewers), aud (auditor), and ines again as a reviewer (for the self-review rule)."""
    handle = make_server()
    for name, actor, role in [("enroller", "carl", "enroller"), ("verifier", "vera", "verifier"),
                              ("investigator", "ines", "investigator"), ("reviewer", "rita", "reviewer"),
                              ("reviewer2", "rob", "reviewer"), ("auditor", "aud", "auditor"),
                              ("ines_reviewer", "ines", "reviewer")]:
        handle.add_key(name, actor, role)
    return handle


@pytest.fixture
def api(server: ServerHandle) -> Api:
    return Api(server)


@pytest.fixture(scope="session")
def photos(lfw: Path, groups: Path):
    from .apihelp import Photos

    return Photos(lfw, groups)
