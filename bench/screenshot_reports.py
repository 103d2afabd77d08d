"""Screenshot the grader's HTML pages with headless Chromium (for a human to look at).

Run by hand:  python3 bench/screenshot_reports.py [RESULT.json | PAGE.html] [--out report.png]
              [--width 1200] [--height 2000]
A result.json is rendered as report.html first; an .html file (e.g. a batch's summary.html) is
shot as it is. Without an argument it uses the fabricated result of tests/test_reports.py.
Needs `chromium` (Debian: apt-get install -y chromium). PNGs are not committed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from grader.reports.html import render_html  # noqa: E402


def browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return name
    raise SystemExit("no headless Chromium found: apt-get install -y chromium")


def screenshot(html_path: Path, png: Path, width: int, height: int) -> None:
    with tempfile.TemporaryDirectory() as profile:  # a throwaway profile: no state between runs
        # No background networking: this machine's closed network refuses those connections.
        subprocess.run([browser(), "--headless", "--no-sandbox", "--disable-gpu",
                        "--hide-scrollbars", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--no-first-run",
                        f"--user-data-dir={profile}",
                        f"--screenshot={png}", f"--window-size={width},{height}",
                        html_path.resolve().as_uri()],
                       check=True, timeout=120, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("page", type=Path, nargs="?", help="a result.json or an .html page")
    parser.add_argument("--out", type=Path, default=Path("report.png"))
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=2000)
    args = parser.parse_args()
    if args.page and args.page.suffix == ".html":
        html_path = args.page
    else:
        if args.page:
            result = json.loads(args.page.read_text())
        else:
            sys.path.insert(0, str(REPO / "tests"))
            from test_reports import sample_result
            result = sample_result()
        html_path = args.out.with_suffix(".html")
        html_path.write_text(render_html(result), encoding="utf-8")
    screenshot(html_path, args.out, args.width, args.height)
    print(f"{args.out} ({args.out.stat().st_size:,} bytes) from {html_path}")


if __name__ == "__main__":
    main()
