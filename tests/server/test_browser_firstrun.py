"""The first-run path in Debian's Chromium: from `faceledger serve` on an empty data directory to a
reviewed lead, as an admin following the Setup tab — keys for each role held in the page (switching
roles without signing out), the policy, a gallery, an authorization; then enrollment, a search and
its review as the people holding those keys; and a warning before the last admin key is revoked.
Screenshots (desktop and phone width) go to ``$FACELEDGER_SCREENSHOTS`` or a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from .live import LiveServer
from .pagehelp import PHONE, screenshot_folder
from .test_browser import TIMEOUT_MS, browser  # noqa: F401 - the module's Chromium fixture

PEOPLE = {"enroller": "carl", "verifier": "vera", "investigator": "ines", "reviewer": "rita", "auditor": "aud"}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A service started on a data directory that does not exist yet (the operator's policy file lives elsewhere)."""
    base = tmp_path_factory.mktemp("firstrun")
    with LiveServer(base / "empty" / "faceledger", env={"FACELEDGER_MODEL_WORKERS": "1"}) as server:
        yield server


@pytest.fixture
def shots(tmp_path) -> Path:
    return screenshot_folder(tmp_path)


def act_as(page, label: str, tab: str) -> None:
    page.select_option("#switch-key", label=label)
    page.locator("#who-text").filter(has_text=label).wait_for()
    page.click(f"#tabs button[data-tab={tab}]")
    page.wait_for_selector(f"section#{tab}:not([hidden])")


def test_first_run_from_an_empty_data_directory_to_a_reviewed_lead(browser, live, lfw, shots):  # noqa: F811
    assert "created data directory" in live.output and f"{live.url}/#setup" in live.output
    assert "Setup tab" in live.output
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(live.url + "/#setup")
    page.fill("#signin-key", live.token)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("section#setup:not([hidden])")            # the banner's tab, straight away
    page.locator("#step-keys .status.todo").wait_for()
    page.locator("#step-gallery .status").filter(has_text="no gallery yet").wait_for()   # steps fill in as they load
    page.locator("#setup-admin-note").filter(has_text="only active admin key").wait_for()
    page.screenshot(path=str(shots / "setup-start.png"), full_page=True)

    for role, actor in PEOPLE.items():                                  # 1. keys, held in the page
        page.fill(f"#setup-keys-form input[name={role}]", actor)
    page.click("#setup-keys-form button[type=submit]")
    page.locator("#setup-msg.ok").filter(has_text="5 key(s) created").wait_for()
    assert page.locator("#setup-token-table tr").count() == 5
    page.locator("#step-keys .status.done").wait_for()
    assert page.is_visible("#switch-box")
    options = page.eval_on_selector_all("#switch-key option", "os => os.map(o => o.textContent)")
    assert sorted(options) == sorted(["admin · admin", *(f"{a} · {r}" for r, a in PEOPLE.items())])

    page.locator("#step-policy .status").filter(has_text="identification off").wait_for()  # 2. the safe default ...
    assert "off" in page.inner_text("#setup-policy")
    page.check("#policy-quick-form input[name=identification]")          # ... changed here, and ledgered
    page.fill("#policy-quick-form input[name=purposes]", "access_control, investigation")
    page.click("#policy-quick-form button[type=submit]")
    page.locator("#setup-msg.ok").filter(has_text="Policy changed").wait_for()
    page.locator("#step-policy .status.done").filter(has_text="identification enabled").wait_for()
    assert "enabled" in page.inner_text("#setup-policy")
    page.fill("#setup-gallery-form input[name=name]", "staff")           # 3. a gallery
    page.click("#setup-gallery-form button[type=submit]")
    page.locator("#step-gallery .status.done").wait_for()
    page.fill("#setup-auth-form input[name=reference]", "CASE-2026-0042")  # 4. an authorization
    page.fill("#setup-auth-form input[name=issuer]", "District Court")
    assert page.input_value("#setup-auth-form select[name=purpose]") == "investigation"
    page.click("#setup-auth-form button[type=submit]")
    page.locator("#step-identify .status.done").wait_for()
    page.locator("#setup-token-table").evaluate("el => el.remove()")      # keep tokens out of the screenshot
    page.screenshot(path=str(shots / "setup-done.png"), full_page=True)
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    page.screenshot(path=str(shots / "setup-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1200, "height": 900})

    act_as(page, "carl · enroller", "enroll")                           # consent, then enrollment
    page.fill("#consent-form input[name=subject_ref]", "Aaron_Peirsol")
    page.fill("#consent-form input[name=notice_version]", "notice-v1")
    page.check("#consent-form input[name=confirm]")
    page.click("#consent-form button[type=submit]")
    page.locator("#consent-msg.ok").filter(has_text="recorded for Aaron_Peirsol").wait_for()
    page.set_input_files("#enroll-form input[name=photos]",
                         [str(lfw / "Aaron_Peirsol" / f"Aaron_Peirsol_000{i}.jpg") for i in (1, 2)])
    page.click("#enroll-form button[type=submit]")
    page.locator("#enroll-msg.ok").filter(has_text="2 template(s) added").wait_for()

    act_as(page, "ines · investigator", "identify")                     # a search under the authorization
    page.set_input_files("#identify-form input[name=photo]", str(lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0004.jpg"))
    page.click("#identify-form button[type=submit]")
    page.locator(".candidate").filter(has_text="Aaron_Peirsol").wait_for()

    act_as(page, "rita · reviewer", "review")                           # the lead, reviewed
    card = page.locator("article.lead.pending").first
    card.wait_for()
    card.locator("select[name=decision]").select_option("confirmed")
    card.locator("select[name=subject_ref]").select_option("Aaron_Peirsol")
    card.locator("textarea[name=rationale]").fill("Same face shape and hairline as the enrolled photos.")
    card.locator("button[type=submit]").click()
    page.locator("#review-msg.ok").filter(has_text=": confirmed").wait_for()

    act_as(page, "admin · admin", "admin")                              # the last admin key: a warning first
    row = page.locator("#keys-table tbody tr").filter(has_text="admin").filter(has_text="active").first
    row.locator("button").click()
    warning = page.locator("#revoke-warning")
    warning.wait_for()
    assert "last active admin key" in warning.inner_text()
    page.screenshot(path=str(shots / "revoke-last-admin.png"), full_page=False)
    page.click("#revoke-cancel")
    assert not warning.is_visible()
    assert "active" in row.inner_text()                                 # nothing was revoked
    page.close()
