"""Overload is refused fast and cheaply (issue 14): a full model pool refuses an upload before reading it.
The figures at 2x and 10x capacity are measured by bench/overload.py."""

from __future__ import annotations

from .apihelp import problem


def test_a_full_model_pool_refuses_uploads_before_reading_them(make_server):
    """With every model worker busy and the queue full, a model request is answered 503 at once: its
    body (here not even a valid form, which would give 422 if it were read) is never parsed."""
    server = make_server()
    pool = server.service.pool
    pool.admitted = pool.capacity               # as if every worker and queue place were taken
    try:
        r = server.client.post("/v1/detect", headers={**server.headers("admin"),
                                                      "Content-Type": "multipart/form-data; boundary=x"},
                               content=b"not a form")
        body = problem(r, 503, "overloaded")
        assert r.headers["retry-after"] and "queue is full" in body["detail"]
        assert server.client.get("/v1/galleries", headers=server.headers("admin")).status_code == 200
        assert server.client.get("/healthz").status_code == 200
    finally:
        pool.admitted = 0
    r = server.client.post("/v1/detect", headers={**server.headers("admin"),
                                                  "Content-Type": "multipart/form-data; boundary=x"},
                           content=b"not a form")
    assert r.status_code in (400, 422), r.text
