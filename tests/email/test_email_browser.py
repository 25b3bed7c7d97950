"""The HTML part in Debian's chromium: 600px and 375px, light and dark; screenshots kept as test artifacts.

Chromium is not a mail client, but Apple Mail, iOS Mail and the Gmail apps render with WebKit/Blink, and
it shows what a reader would see: no sideways scrolling on a phone, the dark palette applied, readable
contrast everywhere. Screenshots go to test-artifacts/email/ (ignored by git) for a person to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import running_browser
from email_support import MANAGE, UNSUBSCRIBE, parts

from feedsvc.config import Publication
from feedsvc.content.model import Issue
from feedsvc.mail import message as mail_message
from feedsvc.mail import newsletter

pytestmark = pytest.mark.browser


# WCAG 2 contrast of every element with text of its own, against the background it is painted on.
CONTRAST = """
() => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(',').map(parseFloat);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const lum = (c) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) return c;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  const failures = [];
  let checked = 0;
  for (const el of document.body.querySelectorAll('*')) {
    if (![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (!box.width || !box.height || style.visibility === 'hidden' || el.closest('.preheader')) continue;
    const fg = parse(style.color), bg = background(el);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    checked += 1;
    if (ratio < needed) {
      failures.push(`${el.tagName}.${el.className} "${el.textContent.trim().slice(0, 12)}" ` +
                    `${style.color} on rgb(${bg.r},${bg.g},${bg.b}): ${ratio.toFixed(2)} < ${needed}`);
    }
  }
  return {checked, failures};
}
"""

LAYOUT = """
() => ({
  scrollWidth: document.documentElement.scrollWidth,
  innerWidth: window.innerWidth,
  container: document.querySelector('table.container').getBoundingClientRect().width,
  body: getComputedStyle(document.body).backgroundColor,
  card: getComputedStyle(document.querySelector('td.card')).backgroundColor,
  title: getComputedStyle(document.querySelector('h3.item-title')).fontFamily,
  lineHeight: getComputedStyle(document.querySelector('.item-body p')).lineHeight,
  preheaderShown: document.querySelector('.preheader').getBoundingClientRect().height > 0,
})
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with running_browser() as browser:
        yield browser


@pytest.fixture(scope="module")
def html(seed: Issue, publication: Publication) -> str:
    """The personalised HTML part of the whole seed issue, as a subscriber receives it."""
    rendered = newsletter.render(seed, "all", publication)
    message = mail_message.build_message(
        rendered, "reader@example.com", mail_message.Links(MANAGE, UNSUBSCRIBE), publication
    )
    return parts(message)[1]


@pytest.fixture(scope="module")
def artifacts(root: Path) -> Path:
    folder = root / "test-artifacts" / "email"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _channels(css: str) -> list[float]:
    return [float(v) for v in css[css.index("(") + 1 : css.index(")")].split(",")[:3]]


@pytest.mark.parametrize("width", [600, 375])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_renders_readably(browser: Any, html: str, artifacts: Path, width: int, scheme: str) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.route("**/*", lambda route: route.abort())  # a mail must not need the network
    try:
        page.set_content(html, wait_until="load")
        layout = page.evaluate(LAYOUT)
        contrast = page.evaluate(CONTRAST)
        page.screenshot(path=str(artifacts / f"issue-398-{width}-{scheme}.png"), full_page=True)
    finally:
        page.close()
    assert requests == []
    assert layout["scrollWidth"] <= layout["innerWidth"], "the reader would scroll sideways"
    assert layout["container"] <= 600
    if width < 600:
        assert layout["container"] >= width - 1  # fluid: the whole phone width
    assert not layout["preheaderShown"]
    assert "PingFang SC" in layout["title"] and "Noto Sans CJK SC" in layout["title"]
    assert float(layout["lineHeight"].removesuffix("px")) >= 1.6 * 16
    body, card = _channels(layout["body"]), _channels(layout["card"])
    if scheme == "dark":
        assert max(body) < 40 and max(card) < 40, (layout["body"], layout["card"])
    else:
        assert min(body) > 200 and min(card) > 200, (layout["body"], layout["card"])
    assert contrast["checked"] > 100
    assert contrast["failures"] == []
