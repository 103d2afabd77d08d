"""Screenshot the grader's HTML pages with headless Chromium (for a human to look at).

Run by hand:
  python3 bench/screenshot_reports.py --out-dir shots/
      report.html and summary.html of the fabricated results in tests/test_reports.py (a TA
      override, cell errors, a class with every flag), each at 1280 and 400 px wide:
      shots/report-1280.png, report-400.png, summary-1280.png, summary-400.png
  python3 bench/screenshot_reports.py RESULT.json|PAGE.html [--out report.png] [--width 1200]
      [--widths 1280,400] [--height 2000]
      one page: a result.json is rendered as report.html first; an .html file (a batch's
      summary.html) is shot as it is. With --widths, one PNG per width (report-1280.png, ...).
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

WIDTHS = (1280, 400)
# Tall enough for the whole sample page at each width (a phone's column is long).
HEIGHTS = {1280: 2400, 400: 5200}


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


def sample_pages(folder: Path) -> dict[str, Path]:
    """report.html and summary.html of the fabricated results the tests use."""
    sys.path.insert(0, str(REPO / "tests"))
    from test_reports import sample_class, sample_result

    from grader.ta import manual_scores
    from grader.reports.summary import render_summary
    from grader.result import GradeResult

    result = manual_scores.apply(GradeResult.model_validate(sample_result()), [
        manual_scores.ManualScore("alice", "model-layers", 3,
                                  "Dropout before the output layer is allowed")])
    report = folder / "report.html"
    report.write_text(render_html(result), encoding="utf-8")
    summary = folder / "summary.html"
    summary.write_text(render_summary(*sample_class()), encoding="utf-8")
    return {"report": report, "summary": summary}


def shoot(page: Path, png: Path, width: int, height: int | None) -> None:
    screenshot(page, png, width, height or HEIGHTS.get(width, 2400))
    print(f"{png} ({png.stat().st_size:,} bytes, {width} px wide) from {page}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("page", type=Path, nargs="?", help="a result.json or an .html page")
    parser.add_argument("--out", type=Path, default=Path("report.png"))
    parser.add_argument("--out-dir", type=Path, help="without a page: where the samples go")
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--widths", help="comma-separated widths, one PNG each")
    parser.add_argument("--height", type=int)
    args = parser.parse_args()
    widths = [int(w) for w in args.widths.split(",")] if args.widths else None
    if args.page is None:
        folder = args.out_dir or Path("shots")
        folder.mkdir(parents=True, exist_ok=True)
        for name, page in sample_pages(folder).items():
            for width in widths or WIDTHS:
                shoot(page, folder / f"{name}-{width}.png", width, args.height)
        return
    if args.page.suffix == ".html":
        html_path = args.page
    else:
        html_path = args.out.with_suffix(".html")
        html_path.write_text(render_html(json.loads(args.page.read_text())), encoding="utf-8")
    if widths is None:
        shoot(html_path, args.out, args.width, args.height or 2000)
        return
    for width in widths:
        shoot(html_path, args.out.with_name(f"{args.out.stem}-{width}{args.out.suffix}"), width,
              args.height)


if __name__ == "__main__":
    main()
