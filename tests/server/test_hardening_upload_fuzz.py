"""A fuzz target over the HTTP upload parsing, against the real app (issue 14, "fuzzing that stays").

Hypothesis builds multipart requests from a grammar and breaks them: odd or wrong boundaries,
wrong and missing content types, hostile part headers (CRLF injection, path names, very long
values), duplicate and unknown fields, truncated bodies, missing closing boundaries, LF-only
line ends, preambles and epilogues; the parts carry a real photo, a cut one, corrupt image
headers or random bytes. Every answer must be a success or a problem+json refusal under 500,
with no traceback; afterwards the service still answers and its ledger verifies. The run is
bounded (``EXAMPLES``) and derandomized, so ``make test`` is repeatable.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = 150
ROUTES = {"/v1/detect": ("verifier", ["photo"], {"purpose": "access_control"}),
          "/v1/verify": ("verifier", ["photo_a", "photo_b"], {"purpose": "access_control"}),
          "/v1/redact": ("verifier", ["photo"], {"method": "blur"}),
          "enroll": ("enroller", ["photos"], {"subject_ref": "fz-1", "purpose": "access_control"}),
          "identify": ("investigator", ["photo"], {"purpose": "investigation"})}
PNG = b"\x89PNG\r\n\x1a\n"
JPEG = b"\xff\xd8\xff\xe0"


@pytest.fixture(scope="module")
def target(make_server, photos):
    from .apihelp import Api

    s = make_server()
    for name, actor, role in [("enroller", "carl", "enroller"), ("verifier", "vera", "verifier"),
                              ("investigator", "ines", "investigator"), ("auditor", "aud", "auditor")]:
        s.add_key(name, actor, role)
    api = Api(s)
    gallery = api.gallery("fuzz")
    assert api.consent(gallery, "fz-1").status_code == 201
    assert api.authorize(gallery).status_code == 201
    photo = photos.lfw_photo("Aaron_Peirsol", 1)
    paths = {**{k: k for k in ROUTES if k.startswith("/")}, "enroll": f"/v1/galleries/{gallery}/enroll",
             "identify": f"/v1/galleries/{gallery}/identify"}
    return s, photo, paths


def _payloads(photo: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(st.just(photo), st.integers(0, len(photo)).map(lambda n: photo[:n]),
                     st.binary(max_size=64).map(lambda b: PNG + b), st.binary(max_size=64).map(lambda b: JPEG + b),
                     st.binary(max_size=256), st.just(b""))


FILENAMES = st.sampled_from([None, "", "a.jpg", "../../etc/passwd", "a\r\nX-Injected: 1.jpg", "\u00e9\u00e8.jpg",
                             "x" * 2000, "a\"; name=\"purpose", "nul\x00.jpg"])
CONTENT_TYPES = st.sampled_from([None, "image/jpeg", "image/png", "text/plain", "application/octet-stream",
                                 "image/jpeg; charset=\u00ff", "x" * 500])


@st.composite
def part(draw, names: list[str], photo: bytes) -> bytes:
    name = draw(st.sampled_from([*names, "purpose", "face", "junk", "", "a\r\nb", "x" * 300]))
    filename = draw(FILENAMES)
    disposition = f'form-data; name="{name}"' + ("" if filename is None else f'; filename="{filename}"')
    headers = [] if draw(st.booleans()) and draw(st.booleans()) else [f"Content-Disposition: {disposition}"]
    ctype = draw(CONTENT_TYPES)
    if ctype:
        headers.append(f"Content-Type: {ctype}")
    if draw(st.integers(0, 9)) == 0:
        headers.append("X-Long: " + "h" * draw(st.sampled_from([1000, 70_000])))
    body = draw(_payloads(photo)) if filename is not None else draw(st.sampled_from([b"access_control", b"0", b""]))
    return "\r\n".join(headers).encode("utf-8", "surrogatepass") + b"\r\n\r\n" + body


@st.composite
def request(draw, photo: bytes, files: list[str], fields: dict[str, str]) -> tuple[bytes, dict[str, bytes]]:
    boundary = draw(st.sampled_from(["b", "----x" * 14, "a b", "\u00e9", "", "=" * 3]))
    if draw(st.integers(0, 3)) == 0:              # a well-formed request, so successes are fuzzed too
        good = [f'Content-Disposition: form-data; name="{f}"; filename="p.jpg"\r\nContent-Type: image/jpeg'
                .encode() + b"\r\n\r\n" + draw(st.sampled_from([photo, photo[:5000]])) for f in files]
        good += [f'Content-Disposition: form-data; name="{k}"\r\n\r\n{v}'.encode() for k, v in fields.items()]
        body = b"".join(b"--xYz\r\n" + p + b"\r\n" for p in good) + b"--xYz--\r\n"
        return body, {"Content-Type": b"multipart/form-data; boundary=xYz"}
    parts = draw(st.lists(part(files, photo), min_size=0, max_size=4))
    parts += [f'Content-Disposition: form-data; name="{k}"\r\n\r\n{v}'.encode() for k, v in fields.items()
              if draw(st.booleans())]
    sep = draw(st.sampled_from([b"\r\n", b"\n"]))
    delim = b"--" + boundary.encode("utf-8")
    body = b"".join(delim + sep + p + sep for p in parts)
    if draw(st.booleans()):
        body += delim + b"--" + sep
    if draw(st.integers(0, 4)) == 0:
        body = b"preamble" + sep + body + b"epilogue"
    if draw(st.integers(0, 3)) == 0:
        body = body[: draw(st.integers(0, len(body)))]
    declared = draw(st.sampled_from([f"multipart/form-data; boundary={boundary}", "multipart/form-data",
                                     f"multipart/form-data; boundary=other{boundary}", "application/json",
                                     "text/plain", "application/x-www-form-urlencoded", "",
                                     f"multipart/mixed; boundary={boundary}"]))
    headers = {"Content-Type": declared.encode("utf-8")} if declared else {}
    return body, headers


def _check(r) -> None:  # noqa: ANN001
    assert r.status_code < 500, (r.status_code, r.text[:300])
    assert "Traceback" not in r.text[:5000]
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/problem+json"), r.headers["content-type"]
        assert r.json()["code"]


def test_no_malformed_upload_breaks_the_service(target):
    server, photo, paths = target
    seen: set[int] = set()

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(route=st.sampled_from(sorted(ROUTES)), data=st.data())
    def run(route: str, data) -> None:  # noqa: ANN001
        role, files, fields = ROUTES[route]
        body, headers = data.draw(request(photo, files, fields))
        r = server.client.post(paths[route], content=body, headers={**server.headers(role), **headers})
        seen.add(r.status_code)
        _check(r)

    run()
    assert {400, 422} <= seen and seen & {200, 201}, seen      # refusals of both kinds, and successes
    assert server.client.get("/healthz").status_code == 200
    verify = server.client.post("/v1/ledger/verify", headers=server.headers("auditor"))
    assert verify.status_code == 200 and verify.json()["ok"], verify.text
