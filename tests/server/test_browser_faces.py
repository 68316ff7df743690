"""Faces on the page, in Debian's Chromium: the Detect view draws boxes and landmarks; with several
faces in a photo, Verify, Enroll and Identify let the user click the face to use instead of erroring;
identify results show the probe face, the gallery size and the expected FPIR. Screenshots (desktop
and phone width) go to ``$FACELEDGER_SCREENSHOTS`` (``docs/screenshots``) or a temporary folder."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from PIL import Image

from .pagehelp import DESKTOP, PHONE, live_with_policy, screenshot_folder
from .test_browser import TIMEOUT_MS, browser  # noqa: F401 - the module's Chromium fixture


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with live_with_policy(tmp_path_factory, "browser-faces") as server:
        yield server


@pytest.fixture(scope="module")
def people(live, lfw):
    """Keys for an enroller, a verifier and an investigator; Aaron enrolled in 'staff' with consent;
    an authorization for identification. Set up through the API (the page's own flows are tested elsewhere)."""
    client = httpx.Client(base_url=live.url, timeout=120)
    admin = {"Authorization": f"Bearer {live.token}"}

    def key(actor: str, role: str) -> str:
        r = client.post("/v1/keys", json={"actor": actor, "role": role}, headers=admin)
        r.raise_for_status()
        return r.json()["token"]

    tokens = {role: key(actor, role) for actor, role in [("carl", "enroller"), ("vera", "verifier"),
                                                         ("ines", "investigator")]}
    client.post("/v1/galleries", json={"name": "staff"}, headers=admin).raise_for_status()
    enroller = {"Authorization": f"Bearer {tokens['enroller']}"}
    for person in ("Aaron_Peirsol", "Padraig_Harrington"):
        client.post("/v1/galleries/staff/consents", headers=enroller, json={
            "subject_ref": person, "purpose": "access_control", "notice_version": "v3",
            "method": "signed_form"}).raise_for_status()
    photos = [("photos", (f"a{i}.jpg", (lfw / "Aaron_Peirsol" / f"Aaron_Peirsol_000{i}.jpg").read_bytes()))
              for i in (1, 2)]
    client.post("/v1/galleries/staff/enroll", headers=enroller, files=photos,
                data={"subject_ref": "Aaron_Peirsol"}).raise_for_status()
    client.post("/v1/authorizations", headers=admin, json={
        "kind": "court_order", "reference": "CASE-7", "issuer": "District Court", "galleries": ["staff"],
        "purposes": ["investigation"], "valid_days": 30}).raise_for_status()
    return tokens


@pytest.fixture(scope="module")
def pair_photo(lfw, tmp_path_factory) -> Path:
    """Aaron (left) and Padraig (right) side by side: one photo with two faces, made at test time."""
    left = Image.open(lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0003.jpg").convert("RGB")
    right = Image.open(lfw / "Padraig_Harrington" / "Padraig_Harrington_0001.jpg").convert("RGB")
    out = Image.new("RGB", (left.width + right.width, max(left.height, right.height)), "white")
    out.paste(left, (0, 0))
    out.paste(right, (left.width, 0))
    path = tmp_path_factory.mktemp("pair") / "aaron_and_padraig.jpg"
    out.save(path, quality=95)
    return path


@pytest.fixture
def shots(tmp_path) -> Path:
    return screenshot_folder(tmp_path)


def open_as(browser, live, token: str, size=DESKTOP):  # noqa: F811
    page = browser.new_page(viewport=size)
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(live.url)
    page.fill("#signin-key", token)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#who:not([hidden])")
    return page


def tab(page, name: str) -> None:
    page.click(f"#tabs button[data-tab={name}]")
    page.wait_for_selector(f"section#{name}:not([hidden])")


def face_on_the_right(page, figure: str) -> int:
    """The index of the face whose box lies in the right half of the photo (Padraig's)."""
    boxes = page.eval_on_selector_all(f"#{figure} g.face rect", "els => els.map(e => +e.getAttribute('x'))")
    return next(i for i, x in enumerate(boxes) if x > 250)


def faces(page, selector: str, n: int) -> None:
    """Wait until exactly ``n`` faces are drawn (the SVG is filled once the photo has loaded)."""
    page.locator(selector).nth(n - 1).wait_for(state="attached")
    assert page.locator(selector).count() == n


def no_spill(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0


def test_detect_view_draws_boxes_and_landmarks(browser, live, people, groups, shots):  # noqa: F811
    for name, size in (("detect", DESKTOP), ("detect-phone", PHONE)):
        page = open_as(browser, live, people["verifier"], size)
        tab(page, "detect")
        page.set_input_files("#detect-photo", str(groups / "facenetpytorch_multiface.jpg"))
        page.click("#detect-form button[type=submit]")
        page.locator("#detect-msg.ok").filter(has_text="6 face(s) found").wait_for()
        faces(page, "#detect-figure g.face", 6)
        assert page.locator("#detect-figure circle.mark").count() == 30          # five landmarks a face
        assert page.locator("#detect-table tbody tr").count() == 6
        no_spill(page)
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        page.close()


def test_verify_lets_the_user_click_the_face_to_compare(browser, live, people, lfw, pair_photo, shots):  # noqa: F811
    page = open_as(browser, live, people["verifier"])
    tab(page, "verify")
    page.set_input_files("#verify-a", str(lfw / "Padraig_Harrington" / "Padraig_Harrington_0002.jpg"))
    page.set_input_files("#verify-b", str(pair_photo))
    page.click("#verify-form button[type=submit]")
    page.locator("#verify-msg").filter(has_text="several faces").wait_for()
    faces(page, "#verify-pick-b g.face", 2)
    page.screenshot(path=str(shots / "verify-pick.png"), full_page=True)
    right = face_on_the_right(page, "verify-pick-b")
    page.click(f"#verify-pick-b button[data-face='{right}']")
    assert page.locator("#verify-verdict").inner_text() == "Same person"
    assert page.input_value("#verify-form input[name=face_b]") == str(right)
    page.close()


def test_enroll_lets_the_user_click_the_subject_face(browser, live, people, lfw, pair_photo, shots):  # noqa: F811
    page = open_as(browser, live, people["enroller"])
    tab(page, "enroll")
    page.fill("#enroll-form input[name=subject_ref]", "Padraig_Harrington")
    page.set_input_files("#enroll-form input[name=photos]",
                         [str(lfw / "Padraig_Harrington" / "Padraig_Harrington_0002.jpg"), str(pair_photo)])
    page.click("#enroll-form button[type=submit]")
    page.locator("#enroll-msg").filter(has_text="photo 2").wait_for()
    faces(page, "#enroll-pick-2 g.face", 2)
    assert page.locator("#enroll-pick-1").count() == 0                      # photo 1 has one face
    page.screenshot(path=str(shots / "enroll-pick.png"), full_page=True)
    page.click(f"#enroll-pick-2 button[data-face='{face_on_the_right(page, 'enroll-pick-2')}']")
    done = "Padraig_Harrington enrolled in staff: 2 template(s) added"
    page.locator("#enroll-msg.ok").filter(has_text=done).wait_for()
    page.close()


def test_identify_searches_the_clicked_face_and_shows_the_probe_and_expected_fpir(
        browser, live, people, pair_photo, shots):  # noqa: F811
    for name, size in (("identify-pick", DESKTOP), ("identify-pick-phone", PHONE)):
        page = open_as(browser, live, people["investigator"], size)
        tab(page, "identify")
        page.set_input_files("#identify-form input[name=photo]", str(pair_photo))
        faces(page, "#identify-pick-figure g.face", 2)
        left = 1 - face_on_the_right(page, "identify-pick-figure")
        page.click(f"#identify-pick-figure button[data-face='{left}']")
        assert page.input_value("#identify-form input[name=face]") == str(left)
        page.click("#identify-form button[type=submit]")
        page.locator(".candidate").filter(has_text="Aaron_Peirsol").wait_for()
        assert page.locator("#identify-result .lead").count() == 1             # only the clicked face searched
        assert page.is_visible("#identify-faces-note")      # the candidates' faces go to the reviewers
        fpir = page.inner_text("#identify-fpir")
        assert "Gallery of" in fpir and "expected FPIR" in fpir
        probe = page.locator("#identify-result img.probe")
        probe.wait_for()
        for _ in range(100):
            if (probe.get_attribute("src") or "").startswith("data:image/jpeg"):
                break
            page.wait_for_timeout(100)
        assert (probe.get_attribute("src") or "").startswith("data:image/jpeg")
        no_spill(page)
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        page.close()


def test_subjects_show_their_enrolled_faces_to_the_enroller(browser, live, people, shots):  # noqa: F811
    for name, size in (("subject-faces", DESKTOP), ("subject-faces-phone", PHONE)):
        page = open_as(browser, live, people["enroller"], size)
        tab(page, "galleries")
        page.locator("#galleries-table button").first.click()
        row = page.locator("#subjects-table tbody tr").filter(has_text="Aaron_Peirsol")
        row.locator("button", has_text="Show faces").click()
        row.locator(".subject-faces img.face-crop").nth(1).wait_for()
        assert row.locator(".subject-faces img.face-crop").count() == 2          # both enrolled photos
        assert (row.locator("img.face-crop").first.get_attribute("src") or "").startswith("data:image/jpeg")
        no_spill(page)
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        page.close()
