"""The page as a product, in Debian's Chromium: the API reference without a CDN, and every tab at
phone width without anything spilling off the screen. Screenshots (desktop and phone) go to
``$FACELEDGER_SCREENSHOTS`` (``docs/screenshots``) or a temporary folder."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from .pagehelp import DESKTOP, PHONE, live_with_policy, screenshot_folder
from .test_browser import TIMEOUT_MS, browser  # noqa: F401 - the module's Chromium fixture


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with live_with_policy(tmp_path_factory, "browser-product") as server:
        yield server


@pytest.fixture
def shots(tmp_path) -> Path:
    return screenshot_folder(tmp_path)


def new_page(browser, size):  # noqa: F811
    page = browser.new_page(viewport=size)
    page.set_default_timeout(TIMEOUT_MS)
    return page


def spill(page) -> int:
    """How many CSS pixels the page is wider than the screen (0: nothing spills)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def test_api_reference_is_drawn_from_openapi_json_without_a_cdn(browser, live, shots):  # noqa: F811
    for name, size in (("api-docs", DESKTOP), ("api-docs-phone", PHONE)):
        page = new_page(browser, size)
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))   # noqa: B023
        page.goto(live.url + "/docs")
        page.locator("#op-post--v1-verify").wait_for()
        assert "FaceLedger" in page.inner_text("#api-title")
        verify = page.inner_text("#op-post--v1-verify")
        assert "photo_a" in verify and "Authorization: Bearer" in verify
        assert page.locator("#schema-Problem").count() == 1
        assert requested and all(u.startswith(live.url) for u in requested), requested
        assert spill(page) <= 0
        page.screenshot(path=str(shots / f"{name}.png"), full_page=False)
        page.close()


def test_every_tab_fits_a_phone_screen(browser, live, shots):  # noqa: F811
    httpx.post(live.url + "/v1/galleries", json={"name": "a-gallery-with-a-rather-long-name-to-fit"},
               headers={"Authorization": f"Bearer {live.token}"}).raise_for_status()
    page = new_page(browser, PHONE)
    page.goto(live.url)
    page.fill("#signin-key", live.token)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#who:not([hidden])")
    tabs = [b.get_attribute("data-tab") for b in page.locator("#tabs button:visible").all()]
    assert "admin" in tabs and "galleries" in tabs
    for tab in tabs:
        page.click(f"#tabs button[data-tab={tab}]")
        page.wait_for_selector(f"section#{tab}:not([hidden])")
        page.wait_for_timeout(200)
        assert spill(page) <= 0, f"the {tab} tab spills {spill(page)} px off a phone screen"
    page.click("#tabs button[data-tab=admin]")
    page.locator("#keys-table tbody tr").first.wait_for()
    page.screenshot(path=str(shots / "admin-phone.png"), full_page=True)
    page.close()
