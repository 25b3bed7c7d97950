"""Benchmark: render + inline one email variant, and the per-recipient cost of personalising and serialising.

The design renders and inlines once per section set and then personalises each recipient's copy by
plain placeholder substitution. This prints:

* the time to render and inline one variant (Jinja + premailer, the render cache cleared each time),
* the time of one premailer inline of that variant's HTML alone,
* the per-recipient time to personalise, build and serialise 10,000 messages of that variant
  (Links validation, placeholder substitution, EmailMessage with every header, base64 parts, bytes),
* that per-recipient time as a ratio to one premailer inline (target: under 5%).

The 10,000 messages are built in 5 rounds of 2,000, each round next to its own inline measurement, and
the figures are medians over the rounds. Run: .venv/bin/python bench/emails.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from feedsvc.config import load_publication  # noqa: E402
from feedsvc.content.reader import parse  # noqa: E402
from feedsvc.mail import message as mail_message  # noqa: E402
from feedsvc.mail import newsletter  # noqa: E402

RECIPIENTS = 10_000
ROUNDS = 5
REPEATS = 11
VARIANT = "industry,technology"
TARGET = 0.05


def median_seconds(action: Callable[[], object], repeats: int = REPEATS) -> float:
    """The median wall time of `action` over `repeats` runs, after one warm-up run."""
    action()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    publication = load_publication(ROOT / "feedsvc.toml")
    issue = parse(ROOT / "issues" / "2024-01-22-398.md", publication)

    def render_fresh(sections: str) -> Callable[[], object]:
        def run() -> object:
            newsletter.render.cache_clear()  # type: ignore[attr-defined]
            return newsletter.render(issue, sections, publication)

        return run

    start = time.perf_counter()
    rendered = newsletter.render(issue, VARIANT, publication)  # the first: templates compiled, stylesheet parsed
    first = time.perf_counter() - start
    source_html, _text = newsletter.render_source(issue, VARIANT, publication)
    whole = newsletter.render(issue, "all", publication)
    base = publication.base_url

    def send(first: int, count: int) -> int:
        """Personalise, build and serialise messages for recipients first … first+count-1; total bytes."""
        total = 0
        for n in range(first, first + count):
            links = mail_message.Links(f"{base}/manage/token-{n:06d}", f"{base}/unsubscribe/token-{n:06d}")
            message = mail_message.build_message(rendered, f"reader{n}@example.com", links, publication)
            total += len(mail_message.serialise(message))
        return total

    send(0, 200)  # warm-up
    # The machine is shared (2 cores), so the per-recipient batch and the inline it is compared with are
    # measured in alternating rounds under the same load; each figure is the median of its rounds.
    chunk = RECIPIENTS // ROUNDS
    inlines, per_recipient, ratios, renders, renders_all = [], [], [], [], []
    total_bytes = 0
    for round_number in range(ROUNDS):
        inline = median_seconds(lambda: newsletter.inline_css(source_html), REPEATS)
        renders.append(median_seconds(render_fresh(VARIANT), 5))
        renders_all.append(median_seconds(render_fresh("all"), 5))
        start = time.perf_counter()
        total_bytes += send(round_number * chunk, chunk)
        each = (time.perf_counter() - start) / chunk
        inlines.append(inline)
        per_recipient.append(each)
        ratios.append(each / inline)
    inline, each, ratio = (statistics.median(v) for v in (inlines, per_recipient, ratios))

    sample = mail_message.build_message(
        whole, "reader@example.com", mail_message.Links(f"{base}/m/x", f"{base}/u/x"), publication
    )
    html_part = sample.get_body(("html",))
    assert html_part is not None
    html_size = len(html_part.get_content().encode("utf-8"))
    encoded = len(html_part.as_bytes())
    items = sum(len(s.items) for s in issue.only(rendered.sections).sections)

    print(f"variant {VARIANT} of issue {issue.number}: {items} items; load average {os.getloadavg()[0]:.1f}")
    print(
        f"first render in a fresh process:     {first * 1000:8.2f} ms  (Jinja compiles, cssutils parses; cached after)"
    )
    print(f"render + inline one variant:         {statistics.median(renders) * 1000:8.2f} ms")
    print(f"render + inline the whole issue:     {statistics.median(renders_all) * 1000:8.2f} ms")
    print(f"one premailer inline of the variant: {inline * 1000:8.2f} ms")
    print(
        f"personalise + build + serialise:     {each * 1e6:8.1f} µs per recipient "
        f"({RECIPIENTS:,} messages, {total_bytes / RECIPIENTS / 1024:.1f} KiB each)"
    )
    verdict = "meets" if ratio < TARGET else "MISSES"
    print(
        f"per-recipient cost / one inline:     {ratio:8.2%}  ({verdict} the target of {TARGET:.0%}; "
        f"rounds {min(ratios):.2%}-{max(ratios):.2%})"
    )
    print(
        f"HTML part of the whole issue:        {html_size:,} bytes ({encoded:,} base64-encoded); "
        f"Gmail clips at {newsletter.GMAIL_CLIP_BYTES:,}"
    )


if __name__ == "__main__":
    main()
