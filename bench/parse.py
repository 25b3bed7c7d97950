"""Parse time of the seed issue and of generated issues of growing size; the cost per item must stay flat.

Run: .venv/bin/python bench/parse.py   (prints figures; asserts nothing about time)
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from feedsvc.config import load_publication  # noqa: E402
from feedsvc.content.reader import parse_bytes  # noqa: E402

SEED = ROOT / "issues" / "2024-01-22-398.md"


def generated_issue(items: int, seed_text: str) -> bytes:
    """An issue shaped like the seed, with `items` items spread over the six sections."""
    sections = ["行业", "内容", "技术", "资本", "人事", "研究"]
    body = seed_text.split("## 行业")[0]
    paragraphs = [
        "1 月 17 日，快手和携程共同宣布达成战略合作。依据合作内容，携程将首次进入快手本地生活生态，并将景点门票、"
        "度假线路等优选产品供应链陆续接入快手平台。",
        "相关专家表示：利用生成式人工智能生成图片时，如果能体现出人的独创性智力投入，就应当被",
        "认定为作品，受到著作权法的保护。详见 https://example.org/report 。",
    ]
    per_section = -(-items // len(sections))
    out, made = [body], 0
    for name in sections:
        out.append(f"## {name}\n")
        for n in range(per_section):
            if made == items:
                break
            heading = f"### 第 {made} 条：{name}新闻标题 {n}" if made % 2 else f"## **{name}第 {made} 条新闻标题**"
            out.append(f"{heading}\n\n" + "\n\n".join(paragraphs) + "\n")
            made += 1
        out.append("---\n")
    out.append(seed_text[seed_text.index("**编辑部：**") :])
    return "\n".join(out).encode("utf-8")


def best_time(data: bytes, publication, repeat: int) -> float:
    """The fastest of `repeat` parses, in seconds (the least disturbed by a noisy machine)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        parse_bytes(data, publication, source="bench.md")
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    publication = load_publication(ROOT / "feedsvc.toml")
    seed = SEED.read_bytes()
    seed_items = sum(len(s.items) for s in parse_bytes(seed, publication).sections)
    seed_time = best_time(seed, publication, repeat=50)
    seed_per_item = seed_time / seed_items
    print(f"seed issue: {seed_items} items, {seed_time * 1000:.2f} ms ({seed_per_item * 1e6:.0f} µs per item)")
    ratios = []
    for items in (250, 500, 1000, 2000):
        data = generated_issue(items, seed.decode("utf-8"))
        parsed = sum(len(s.items) for s in parse_bytes(data, publication).sections)
        assert parsed == items, (parsed, items)
        elapsed = best_time(data, publication, repeat=5)
        per_item = elapsed / items
        ratios.append(per_item / seed_per_item)
        print(
            f"generated issue: {items:5d} items, {elapsed * 1000:8.1f} ms, {per_item * 1e6:5.0f} µs per item, "
            f"per-item cost {per_item / seed_per_item:.2f}x the seed's, time {elapsed / seed_time:.1f}x the seed's"
        )
    spread = max(ratios) / min(ratios)
    print(
        f"per-item cost from 250 to 2000 items varies by {spread:.2f}x (1.00 = perfectly linear); "
        f"median per-item ratio to the seed {statistics.median(ratios):.2f}"
    )


if __name__ == "__main__":
    main()
