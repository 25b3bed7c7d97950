"""The pages in a real browser (Debian's chromium through Playwright): readable on a phone, in light and
dark mode, with JavaScript switched off."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

pytestmark = pytest.mark.browser

PAGES = ("/", "/issues/", "/issues/398", "/issues/398?lang=en", "/feeds/nope.atom")
PHONE = {"width": 360, "height": 740}


@pytest.fixture(scope="module")
def browser(require_tool: Callable[[str], str]) -> Iterator[object]:
    chromium = require_tool("chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def _luminance(css_color: str) -> float:
    """Relative brightness 0..1 of an rgb()/rgba() CSS colour."""
    r, g, b = (int(part) for part in css_color[css_color.index("(") + 1 : css_color.index(")")].split(",")[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_pages_fit_a_phone_in_both_colour_schemes(browser, live, scheme: str) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport=PHONE, color_scheme=scheme, java_script_enabled=False)
    try:
        page = context.new_page()
        for path in PAGES:
            page.goto(live.url + path)
            layout = page.evaluate(
                """() => ({
                    overflow: document.documentElement.scrollWidth - window.innerWidth,
                    font: parseFloat(getComputedStyle(document.body).fontSize),
                    background: getComputedStyle(document.body).backgroundColor,
                    text: getComputedStyle(document.body).color,
                })"""
            )
            assert layout["overflow"] <= 0, f"{path} scrolls sideways on a phone by {layout['overflow']} px"
            assert layout["font"] >= 16, path
            background, text = _luminance(layout["background"]), _luminance(layout["text"])
            if scheme == "dark":
                assert background < 0.2 and text > 0.7, (path, layout)
            else:
                assert background > 0.8 and text < 0.3, (path, layout)
    finally:
        context.close()


def test_issue_anchors_work_without_javascript(browser, live) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{live.url}/issues/398")
        assert page.locator("article.item").count() == 27
        page.locator("nav.toc a[href='#technology']").click()
        assert page.url.endswith("#technology")
        assert page.locator("#technology h3").count() == 4
        assert page.locator("#technology").is_visible()
    finally:
        context.close()
