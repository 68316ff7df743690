"""The service itself: health, metrics, problem+json, idempotency, keys, limits, the page, the OpenAPI document."""

from __future__ import annotations

import re
import threading
import time

from .apihelp import entries, problem


def test_health_and_readiness(api):
    assert api.get(None, "/healthz").json() == {"status": "ok"}
    ready = api.get(None, "/readyz").json()
    assert ready["status"] == "ready" and ready["model_workers"] == 2 and ready["store"] == "sqlite"


def test_metrics_in_prometheus_text_format(api, photos):
    api.post("verifier", "/v1/detect", files={"photo": ("a.jpg", photos.lfw_photo("Aaron_Peirsol", 1))})
    api.get("admin", "/v1/galleries/some-gallery")
    r = api.get(None, "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    detect = 'method="POST",route="/v1/detect"'
    assert re.search(rf'^faceledger_http_requests_total\{{{detect},status="200"\}} \d+\.0$', text, re.M)
    assert 'route="/v1/galleries/{gallery}"' in text and "some-gallery" not in text     # templates, not raw paths
    assert re.search(rf'^faceledger_http_request_duration_seconds_bucket\{{le="\+Inf",{detect}\}} \d+\.0$', text, re.M)
    assert re.search(r'^faceledger_model_run_seconds_count\{operation="detect"\} \d+\.0$', text, re.M)
    assert re.search(r"^faceledger_model_queue_depth 0\.0$", text, re.M)
    for line in text.splitlines():      # every sample line is "name{labels} value"
        assert line.startswith("#") or re.match(r'^[a-z_]+(\{([a-z_]+="[^"]*",?)*\})? [0-9.e+-]+$', line), line


def test_metrics_can_require_an_admin_or_auditor_key(make_server):
    s = make_server(metrics_public=False)
    problem(s.client.get("/metrics"), 401, "unauthenticated")
    s.add_key("verifier", "vera", "verifier")
    problem(s.client.get("/metrics", headers=s.headers("verifier")), 401, "unauthenticated")
    assert s.client.get("/metrics", headers=s.headers("admin")).status_code == 200


def test_concurrent_requests_keep_the_store_and_ledger_consistent(api, server, photos):
    """Model work in two worker threads and governance writes at once, over one SQLite store."""
    from concurrent.futures import ThreadPoolExecutor

    gallery = api.gallery("busy")
    people = ["Aaron_Peirsol", "Padraig_Harrington"]
    for person in people:
        assert api.consent(gallery, person).status_code == 201
    verify = {"photo_a": ("a.jpg", photos.lfw_photo("Aaron_Peirsol", 1)),
              "photo_b": ("b.jpg", photos.lfw_photo("Aaron_Peirsol", 2))}
    jobs = [lambda p=p: api.enroll(gallery, p, [photos.lfw_photo(p, 1), photos.lfw_photo(p, 3)]) for p in people]
    jobs += [lambda: api.post("verifier", "/v1/verify", files=verify, data={"purpose": "access_control"})] * 4
    jobs += [lambda: api.get("enroller", f"/v1/galleries/{gallery}/consents")] * 4
    jobs += [lambda: api.post("auditor", "/v1/ledger/verify", json={"checkpoints": False})] * 2
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda job: job(), jobs))
    failed = [r.text for r in answers if r.status_code >= 300]
    assert [r.status_code for r in answers] == [201, 201] + [200] * 10, failed
    subjects = api.get("enroller", f"/v1/galleries/{gallery}/subjects").json()
    assert sorted((s["subject_ref"], s["templates"]) for s in subjects) == [(p, 2) for p in people]
    assert api.post("auditor", "/v1/ledger/verify", json={"checkpoints": False}).json()["ok"]


def test_errors_are_problem_json_never_tracebacks(api):
    problem(api.get("admin", "/v1/no-such-route"), 404, "not_found")
    problem(api.get(None, "/v1/no-such-route"), 401, "unauthenticated")      # nothing to see without a key
    problem(api.request("admin", "PUT", "/v1/galleries"), 405, "method_not_allowed")
    problem(api.post("admin", "/v1/galleries", content=b"{not json", headers={"Content-Type": "application/json"}), 422,
            "validation_error")


def test_unexpected_failure_is_a_generic_500(make_server):
    s = make_server()

    def broken(*args, **kwargs):
        raise RuntimeError("secret internal detail /etc/passwd")

    s.service.gov.list_galleries = broken           # an engine fault nobody planned for
    r = s.client.get("/v1/galleries", headers=s.headers("admin"))
    body = problem(r, 500, "internal_error")
    assert "secret" not in r.text and "RuntimeError" not in r.text and body["detail"]


def test_anonymous_uploads_are_refused_before_their_body_is_read(api, server):
    big = b"\xff\xd8\xff" + b"\0" * (40 * 1024 * 1024)           # over the body cap: 413 if it were read
    problem(api.post(None, "/v1/detect", files={"photo": ("a.jpg", big)}), 401, "unauthenticated")
    problem(api.post("verifier", "/v1/detect", files={"photo": ("a.jpg", big)}), 413, "request_too_large")


def test_me_and_key_management(api, server):
    me = api.get("enroller", "/v1/me").json()
    assert (me["actor"], me["role"]) == ("carl", "enroller") and "enroll" in me["operations"]
    assert me["identification_enabled"] is True and "investigation" in me["purposes"]
    seq = server.head()
    created = api.post("admin", "/v1/keys", json={"actor": "dora", "role": "auditor", "label": "external audit"})
    assert created.status_code == 201 and created.json()["token"].startswith("flk_")
    listed = api.get("admin", "/v1/keys").json()
    assert all("token" not in k and "digest" not in k and "salt" not in k for k in listed)
    assert created.json()["key_id"] in [k["key_id"] for k in listed]
    problem(api.post("enroller", "/v1/keys", json={"actor": "mallory", "role": "admin"}), 403, "permission_denied")
    problem(api.get("auditor", "/v1/keys"), 403, "permission_denied")
    problem(api.post("admin", "/v1/keys", json={"actor": "x", "role": "root"}), 422, "validation_error")
    problem(api.post("admin", "/v1/keys/000000000000/revoke"), 404, "not_found")
    ops = [(e.operation, e.outcome) for e in entries(server, seq) if e.operation.startswith("key_")]
    assert ops == [("key_create", "ok"), ("key_list", "ok"), ("key_create", "refused"), ("key_list", "refused"),
                   ("key_revoke", "error")]


def test_idempotent_replay_returns_the_first_answer_and_runs_once(api, server):
    seq = server.head()
    key = {"Idempotency-Key": "create-gallery-idem-1"}
    first = api.post("admin", "/v1/galleries", json={"name": "idem-gallery"}, headers=key)
    again = api.post("admin", "/v1/galleries", json={"name": "idem-gallery"}, headers=key)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert len(entries(server, seq, "gallery_create")) == 1
    problem(api.post("admin", "/v1/galleries", json={"name": "other-gallery"}, headers=key), 422,
            "idempotency_key_reused")
    fresh = api.post("admin", "/v1/galleries", json={"name": "idem-gallery"}, headers={"Idempotency-Key": "k2"})
    problem(fresh, 409, "conflict")                 # a new key runs again (and the engine refuses the duplicate)
    problem(api.post("admin", "/v1/galleries", json={"name": "x"}, headers={"Idempotency-Key": ""}), 400,
            "bad_idempotency_key")


def test_idempotency_keys_are_per_api_key_and_replay_refusals(api, server):
    key = {"Idempotency-Key": "shared-key"}
    a = api.post("admin", "/v1/ledger/verify", json={"checkpoints": False}, headers=key)
    b = api.post("auditor", "/v1/ledger/verify", json={"checkpoints": False}, headers=key)
    assert a.status_code == b.status_code == 200 and "idempotent-replayed" not in b.headers
    seq = server.head()
    r1 = api.post("enroller", "/v1/ledger/verify", json={}, headers={"Idempotency-Key": "refused-once"})
    r2 = api.post("enroller", "/v1/ledger/verify", json={}, headers={"Idempotency-Key": "refused-once"})
    problem(r1, 403, "permission_denied")
    assert r2.status_code == 403 and r2.json() == r1.json() and r2.headers["idempotent-replayed"] == "true"
    assert len(entries(server, seq, "ledger_verify")) == 1


def test_idempotent_multipart_replay_ignores_the_boundary(api, server, photos):
    seq = server.head()
    files = {"photo": ("a.jpg", photos.lfw_photo("Aaron_Peirsol", 1), "image/jpeg")}
    key = {"Idempotency-Key": "detect-once"}
    first = api.post("verifier", "/v1/detect", files=files, headers=key)
    again = api.post("verifier", "/v1/detect", files=files, headers=key)     # httpx draws a new boundary
    assert first.json() == again.json() and again.headers["idempotent-replayed"] == "true"
    assert len(entries(server, seq, "detect")) == 1


def test_created_key_token_is_not_kept_for_replays(api, server):
    key = {"Idempotency-Key": "new-key-once"}
    first = api.post("admin", "/v1/keys", json={"actor": "eve", "role": "verifier"}, headers=key)
    again = api.post("admin", "/v1/keys", json={"actor": "eve", "role": "verifier"}, headers=key)
    assert first.json()["token"] and again.json()["token"] is None
    assert again.json()["key_id"] == first.json()["key_id"]
    assert first.json()["token"].split("_", 2)[2].encode() not in (server.data_dir / "faceledger.db").read_bytes()


def test_rate_limit_per_key(make_server):
    s = make_server(rate_limit_per_minute=6, rate_limit_burst=2)
    h = s.headers("admin")
    codes = [s.client.get("/v1/me", headers=h).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    r = s.client.get("/v1/me", headers=h)
    problem(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1
    assert "faceledger_rate_limited_total 2.0" in s.client.get("/metrics").text


def test_overload_answers_503_at_once_with_retry_after(make_server, photos, recognizers):
    s = make_server(model_workers=1, model_queue=0, retry_after_s=3)
    h = s.headers("admin")
    assert s.client.post("/v1/keys", headers=h, json={"actor": "vera", "role": "verifier"}).status_code == 201
    token = s.client.post("/v1/keys", headers=h, json={"actor": "val", "role": "verifier"}).json()["token"]
    vh = {"Authorization": f"Bearer {token}"}
    pool, hold = s.service.pool, threading.Event()
    worker = pool.workers()[0]
    real_verify = worker.verify

    def held_verify(*args, **kwargs):       # keep the only worker busy until the second request was answered
        hold.wait(30)
        return real_verify(*args, **kwargs)

    worker.verify = held_verify
    files = {"photo_a": ("a.jpg", photos.lfw_photo("Aaron_Peirsol", 1)),
             "photo_b": ("b.jpg", photos.lfw_photo("Aaron_Peirsol", 2))}
    first: list = []
    form = {"purpose": "access_control"}
    t = threading.Thread(target=lambda: first.append(s.client.post("/v1/verify", headers=vh, files=files, data=form)))
    t.start()
    deadline = time.monotonic() + 20
    while pool.running < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    second = s.client.post("/v1/verify", headers=vh, files=files, data=form)
    waited = time.monotonic() - started
    hold.set()
    t.join(30)
    problem(second, 503, "overloaded")
    assert second.headers["retry-after"] == "3" and waited < 10
    assert first[0].status_code == 200 and first[0].json()["match"] is True


def test_the_page_and_its_assets_are_served_with_a_strict_policy(api, server):
    page = api.get(None, "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    for asset in ("/static/app.js", "/static/api.js", "/static/app.css"):
        assert api.get(None, asset).status_code == 200
    text = page.text + "".join(api.get(None, f"/static/{f}").text for f in ("app.js", "api.js", "app.css"))
    assert not re.search(r"(src|href)=\"(https?:)?//", text) and "@import" not in text and "cdn" not in text.lower()
    assert api.get("admin", "/v1/me").headers["cache-control"] == "no-store"


def test_openapi_document_describes_every_route_with_bearer_auth(api):
    doc = api.get(None, "/openapi.json").json()
    paths = doc["paths"]
    for path in ["/v1/detect", "/v1/verify", "/v1/galleries", "/v1/galleries/{gallery}/enroll",
                 "/v1/galleries/{gallery}/identify", "/v1/galleries/{gallery}/consents", "/v1/leads",
                 "/v1/leads/{lead_id}/reviews", "/v1/authorizations", "/v1/ledger/verify", "/v1/ledger/export",
                 "/v1/ledger/checkpoints", "/v1/reports/usage", "/v1/retention/run", "/v1/keys", "/v1/me"]:
        assert path in paths, path
    assert doc["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    assert "Problem" in doc["components"]["schemas"]
    page = api.get(None, "/docs")                              # the reference page: the service's own files only
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert re.findall(r'(?:src|href)="([^"]+)"', page.text) and all(
        u.startswith(("/", "#", "data:")) for u in re.findall(r'(?:src|href)="([^"]+)"', page.text))
    assert api.get(None, "/redoc").status_code == 404
