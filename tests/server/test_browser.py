"""The web page in Debian's Chromium (Playwright): enroll with consent, verify, identify under an
authorization, review the lead, see the ledger verify as intact, and read the usage report.

Screenshots of each page go to ``$FACELEDGER_SCREENSHOTS`` (``docs/screenshots`` for the README) or
a temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import httpx
import pytest

from .apihelp import POLICY
from .live import LiveServer

CHROMIUM = os.environ.get("FACELEDGER_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory, testdata):
    data = tmp_path_factory.mktemp("browser") / "faceledger"
    data.mkdir()
    (data / "policy.toml").write_text(POLICY)
    server = LiveServer(data, env={"FACELEDGER_MODEL_WORKERS": "1"})
    with server:
        yield server


class Page:
    """The FaceLedger page driven like a person would: sign in, pick a tab, fill forms."""

    def __init__(self, page, url: str, shots: Path) -> None:
        self.page, self.url, self.shots = page, url, shots
        page.set_default_timeout(TIMEOUT_MS)
        page.set_viewport_size({"width": 1200, "height": 900})

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)

    def sign_in(self, token: str) -> None:
        if self.page.is_visible("#sign-out"):
            self.page.click("#sign-out")
        self.page.fill("#signin-key", token)
        self.page.click("#signin-form button[type=submit]")
        self.page.wait_for_selector("#who:not([hidden])")

    def tab(self, name: str) -> None:
        self.page.click(f"#tabs button[data-tab={name}]")
        self.page.wait_for_selector(f"section#{name}:not([hidden])")

    def message(self, box: str, contains: str) -> str:
        self.page.wait_for_selector(f"#{box}.ok, #{box}.refused, #{box}.error")
        locator = self.page.locator(f"#{box}")
        locator.filter(has_text=contains).wait_for()
        return locator.inner_text()

    def new_key(self, actor: str, role: str) -> str:
        self.page.fill("#key-form input[name=actor]", actor)
        self.page.select_option("#key-form select[name=role]", role)
        self.page.click("#key-form button[type=submit]")
        self.page.locator("#new-token").filter(has_text=f"Key for {actor}").wait_for()
        return self.page.inner_text("#new-token-value").strip()


def test_a_day_with_the_web_page(browser, live, lfw, tmp_path):
    shots = Path(os.environ.get("FACELEDGER_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    ui = Page(browser.new_page(), live.url, shots)
    photo = lambda name, n: str(lfw / name / f"{name}_{n:04d}.jpg")  # noqa: E731
    ui.page.goto(live.url)
    ui.page.wait_for_selector("#signin-form")
    ui.shot("signin")
    ui.page.fill("#signin-key", "flk_000000000000_" + "A" * 43)
    ui.page.click("#signin-form button[type=submit]")
    assert "Sign in with a valid API key" in ui.message("signin-msg", "unknown or revoked")

    # The administrator: a gallery, a key for each person, an authorization for identification.
    ui.sign_in(live.token)
    ui.tab("galleries")
    ui.page.fill("#gallery-form input[name=name]", "staff")
    ui.page.click("#gallery-form button[type=submit]")
    ui.message("galleries-msg", "Gallery staff created")
    ui.tab("admin")
    tokens = {role: ui.new_key(actor, role) for actor, role in [("carl", "enroller"), ("vera", "verifier"),
              ("ines", "investigator"), ("rita", "reviewer"), ("aud", "auditor")]}
    ui.page.fill("#auth-form input[name=reference]", "CASE-2026-0042")
    ui.page.fill("#auth-form input[name=issuer]", "District Court")
    ui.page.fill("#auth-form input[name=galleries]", "staff")
    ui.page.fill("#auth-form input[name=purposes]", "investigation")
    ui.page.click("#auth-form button[type=submit]")
    ui.message("auth-msg", "CASE-2026-0042 recorded")
    ui.page.locator("#new-token").evaluate("el => el.hidden = true")   # keep tokens out of the screenshot
    ui.shot("admin")
    assert not ui.page.is_visible("#tabs button[data-tab=verify]")     # the admin role may not verify faces

    # The enroller: no consent, no template; then consent and enrollment.
    ui.sign_in(tokens["enroller"])
    ui.tab("enroll")
    ui.page.fill("#enroll-form input[name=subject_ref]", "Aaron_Peirsol")
    ui.page.set_input_files("#enroll-form input[name=photos]", [photo("Aaron_Peirsol", 1)])
    ui.page.click("#enroll-form button[type=submit]")
    assert "No valid consent" in ui.message("enroll-msg", "consent")
    for person in ("Aaron_Peirsol", "Padraig_Harrington"):
        ui.page.fill("#consent-form input[name=subject_ref]", person)
        ui.page.fill("#consent-form input[name=notice_version]", "notice-v3")
        ui.page.check("#consent-form input[name=confirm]")
        ui.page.click("#consent-form button[type=submit]")
        ui.message("consent-msg", f"recorded for {person}")
        ui.page.set_input_files("#enroll-form input[name=photos]", [photo(person, 1), photo(person, 2)])
        ui.page.click("#enroll-form button[type=submit]")
        ui.message("enroll-msg", f"{person} enrolled in staff: 2 template(s) added")
    ui.page.click("#consents-refresh")
    ui.page.locator("#consents-table tbody tr").nth(1).wait_for()
    ui.shot("enroll")

    # The verifier: two photos of one person.
    ui.sign_in(tokens["verifier"])
    ui.tab("verify")
    ui.page.set_input_files("#verify-a", photo("Aaron_Peirsol", 1))
    ui.page.set_input_files("#verify-b", photo("Aaron_Peirsol", 3))
    ui.page.click("#verify-form button[type=submit]")
    assert ui.page.locator("#verify-verdict").inner_text() == "Same person"
    ui.page.locator("#verify-prev-b .facebox").wait_for()
    ui.shot("verify")

    # The investigator: targets are a choice from the policy's vocabulary (prohibited ones are not
    # offered, only named); an authorized search gives a lead.
    ui.sign_in(tokens["investigator"])
    ui.tab("identify")
    assert ui.page.input_value("#identify-form select[name=purpose]") == "investigation"
    ui.page.locator("#identify-targets option[value=suspect]").wait_for(state="attached")
    offered = ui.page.eval_on_selector_all("#identify-targets option", "os => os.map(o => o.value)")
    assert "suspect" in offered and "protest" not in offered
    assert "protest" in ui.page.inner_text("#identify-prohibited")
    ui.page.set_input_files("#identify-form input[name=photo]", photo("Aaron_Peirsol", 4))
    ui.page.select_option("#identify-targets", ["suspect"])
    ui.page.click("#identify-form button[type=submit]")
    ui.page.locator(".candidate").filter(has_text="Aaron_Peirsol").wait_for()
    assert "not a basis for action on its own" in ui.page.inner_text("#identify-result")
    ui.shot("identify")

    # The reviewer confirms the lead with a rationale.
    ui.sign_in(tokens["reviewer"])
    ui.tab("review")
    card = ui.page.locator("article.lead.pending").first
    card.wait_for()
    # Evidence: the probe's face beside the enrolled face, with the score, before deciding.
    card.locator("button.compare").click()
    card.locator(".evidence figure.candidate img").first.wait_for()
    assert card.locator(".evidence figure.probe img").count() == 1
    assert "Aaron_Peirsol" in card.locator(".evidence figure.candidate figcaption").first.inner_text()
    size = card.locator(".evidence figure.probe img").evaluate("i => [i.naturalWidth, i.naturalHeight]")
    assert min(size) > 40  # a real, decoded face crop
    ui.shot("review-evidence")
    card.locator("select[name=decision]").select_option("confirmed")
    card.locator("select[name=subject_ref]").select_option("Aaron_Peirsol")
    card.locator("textarea[name=rationale]").fill("Same face shape, ears and hairline as the enrolled photos.")
    card.locator("button[type=submit]").click()
    ui.message("review-msg", ": confirmed")
    assert ui.page.is_visible("#tabs button[data-tab=review]")
    assert not ui.page.is_visible("#tabs button[data-tab=enroll]")          # tabs follow the role
    ui.page.select_option("#leads-status", "")
    ui.page.locator("article.lead.confirmed").wait_for()
    ui.shot("review")

    # The administrator signs a checkpoint of the ledger's head; the auditor verifies the ledger against it.
    ui.sign_in(live.token)
    ui.tab("ledger")
    ui.page.click("#ledger-checkpoint")
    ui.message("ledger-msg", "Checkpoint signed")
    ui.sign_in(tokens["auditor"])
    ui.tab("ledger")
    ui.page.click("#ledger-verify")
    assert ui.page.locator("#ledger-verdict").inner_text() == "Ledger intact"
    assert "1 signed checkpoint(s) matched" in ui.page.inner_text("#ledger-result")
    ui.shot("ledger")
    ui.tab("reports")
    ui.page.click("#report-form button[type=submit]")
    ui.page.locator("#report-cards").wait_for()
    assert "identify" in ui.page.inner_text("#report-cards")
    ui.shot("reports")

    ui.sign_in(live.token)
    ui.tab("galleries")
    ui.page.locator("#galleries-table button").first.click()
    ui.page.locator("#subjects-table tbody tr").nth(1).wait_for()
    ui.shot("galleries")

    export = httpx.get(live.url + "/v1/ledger/export", headers={"Authorization": f"Bearer {tokens['auditor']}"})
    done = {(e["actor"], e["operation"], e["outcome"]) for e in map(json.loads, export.text.splitlines())}
    for expected in [("carl", "enroll", "refused"), ("carl", "enroll", "ok"), ("vera", "verify", "ok"),
                     ("ines", "identify", "ok"), ("rita", "review", "ok"),
                     ("aud", "ledger_verify", "ok"), ("admin", "authorization_record", "ok"),
                     ("admin", "ledger_checkpoint", "ok")]:
        assert expected in done, expected
    assert not [e for e in done if e[2] != "ok" and e[1] not in ("enroll", "identify")]   # the page trips no rule
    assert {p.name for p in shots.glob("*.png")} >= {f"{n}.png" for n in (
        "signin", "admin", "enroll", "verify", "identify", "review", "ledger", "reports",
        "galleries")}


def test_redact_a_photo_in_the_web_page(browser, live, groups, tmp_path):
    """A verifier redacts a group photo: the result appears with its face count and a download link."""
    shots = Path(os.environ.get("FACELEDGER_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    admin = {"Authorization": f"Bearer {live.token}"}
    keys = {role: httpx.post(live.url + "/v1/keys", headers=admin, json={"actor": actor, "role": role})
            for actor, role in (("rhea", "verifier"), ("otto", "auditor"))}
    assert all(r.status_code == 201 for r in keys.values()), [r.text for r in keys.values()]
    ui = Page(browser.new_page(), live.url, shots)
    ui.page.goto(live.url)
    ui.sign_in(keys["verifier"].json()["token"])
    ui.tab("redact")
    ui.page.set_input_files("#redact-photo", str(groups / "facenetpytorch_multiface.jpg"))
    ui.page.select_option("#redact-form select[name=method]", "pixelate")
    ui.page.click("#redact-form button[type=submit]")
    assert "no image was kept" in ui.message("redact-msg", "Redacted and ledgered")
    count = ui.page.inner_text("#redact-count")
    assert int(count.split()[0]) >= 5 and count.endswith("face(s) redacted")
    ui.page.wait_for_function("document.querySelector('#redact-img').naturalWidth === 1200")
    assert ui.page.get_attribute("#redact-download", "download") == "facenetpytorch_multiface_redacted.jpg"
    assert ui.page.get_attribute("#redact-img", "src").startswith("blob:")
    ui.shot("redact")
    assert (shots / "redact.png").is_file()
    auditor = {"Authorization": f"Bearer {keys['auditor'].json()['token']}"}
    export = httpx.get(live.url + "/v1/ledger/export", headers=auditor)
    redactions = [e for e in map(json.loads, export.text.splitlines()) if e["operation"] == "redact"]
    assert [(e["actor"], e["outcome"], e["result"]["method"]) for e in redactions] == [("rhea", "ok", "pixelate")]
