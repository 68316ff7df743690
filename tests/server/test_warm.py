"""The service loads every gallery's search index at start-up, and /readyz says so until it is done."""

from __future__ import annotations

import threading
import time

import pytest

from faceledger.engine import Engine
from faceledger.errors import StoreUnavailableError

from .apihelp import Api, problem

PEOPLE = [("Aaron_Peirsol", 1), ("Abdullah_Gul", 1), ("Aaron_Eckhart", 1)]


@pytest.fixture(scope="module")
def enrolled(make_server, photos):
    """A service's data directory holding one gallery of three real people (that service still runs)."""
    first = make_server()
    first.add_key("enroller", "carl", "enroller")
    first.add_key("investigator", "ines", "investigator")
    api = Api(first)
    gallery = api.gallery("warm")
    for name, n in PEOPLE:
        assert api.consent(gallery, name).status_code == 201
        r = api.enroll(gallery, name, [photos.lfw_photo(name, n)])
        assert r.status_code == 201, r.text
    return first.data_dir, gallery, first.tokens


def _held(service) -> set[int]:  # noqa: ANN001
    """Template ids the store holds in memory for search (a look inside, for the test only)."""
    return {t for index in service.gov.store._indexes.values() for t in index.template_ids}


def test_a_restarted_service_holds_its_galleries_before_the_first_search(make_server, enrolled):
    data, gallery, _ = enrolled
    handle = make_server(data=data)
    ready = handle.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["galleries"] | {"seconds": 0} == {"state": "done", "galleries": 1, "total": 1,
                                                          "templates": len(PEOPLE), "seconds": 0}
    assert len(_held(handle.service)) == len(PEOPLE)  # loaded by the start, not by a search


def test_without_warming_a_gallery_loads_at_its_first_search(make_server, enrolled, photos):
    data, gallery, tokens = enrolled
    handle = make_server(data=data, warm_galleries=False)
    handle.tokens.update(tokens)  # the keys live in the store
    assert handle.client.get("/readyz").json()["galleries"]["state"] == "off"
    assert _held(handle.service) == set()
    api = Api(handle)
    assert api.authorize(gallery).status_code == 201
    r = api.identify(gallery, photos.lfw_photo("Abdullah_Gul", 6))
    assert r.status_code == 200, r.text
    assert len(_held(handle.service)) == len(PEOPLE)


def test_readyz_answers_503_warming_until_the_galleries_are_loaded(enrolled, recognizers, monkeypatch):
    data, _, _ = enrolled
    release, entered = threading.Event(), threading.Event()
    real = Engine.warm_galleries

    def held_back(self, progress=None):  # noqa: ANN001, ANN202 - the real load, once the test lets it go
        entered.set()
        assert release.wait(60)
        return real(self, progress)

    monkeypatch.setattr(Engine, "warm_galleries", held_back)
    from fastapi.testclient import TestClient  # make_server waits for the load: this one is started by hand

    from faceledger.server import create_app, load_settings

    settings = load_settings(env={}, data_dir=data, retention_every_hours=0, model_workers=1)
    app = create_app(settings, recognizers=recognizers)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert entered.wait(60)
        r = client.get("/readyz")
        body = problem(r, 503, "warming")
        assert r.headers["retry-after"] == "1" and body["galleries"]["state"] == "loading"
        assert client.get("/healthz").status_code == 200  # alive, just not ready
        release.set()
        deadline = time.monotonic() + 60
        while (r := client.get("/readyz")).status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert r.status_code == 200 and r.json()["galleries"]["state"] == "done"
    app.state.service.close()


def test_a_failed_load_is_reported_and_searches_still_load_their_gallery(make_server, enrolled, monkeypatch):
    data, _, _ = enrolled

    def broken(self, progress=None):  # noqa: ANN001, ANN202
        raise StoreUnavailableError("the database went away half way")

    monkeypatch.setattr(Engine, "warm_galleries", broken)
    handle = make_server(data=data)
    r = handle.client.get("/readyz")
    assert r.status_code == 200  # the store answers; galleries are read when searched
    galleries = r.json()["galleries"]
    assert galleries == {"state": "failed", "galleries": 0, "templates": 0, "seconds": galleries["seconds"],
                         "error": "StoreUnavailableError"}  # the kind only: /readyz is public


def test_warming_follows_the_setting_from_the_environment(tmp_path):
    from faceledger.server import load_settings

    assert load_settings(env={}, data_dir=tmp_path).warm_galleries is True
    assert load_settings(env={"FACELEDGER_WARM_GALLERIES": "false"}, data_dir=tmp_path).warm_galleries is False
