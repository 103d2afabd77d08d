"""Benchmark: does subset mode give the verdicts the full data gives?

Run by hand:  python3 bench/subset_fidelity.py [--assignment ID ...] [--course DIR]
              [--variant NAME ...] [--modes subset,full] [--data-dir DIR] [--keep DIR]
              [--full-timeout SECONDS]

Any assignment of the course (--course DIR, else $GRADER_COURSE, as for `grader`) that reads a
dataset; by default all of them. A new homework's subset size is chosen with it
(docs/authoring.md: subset sizes).

Grades each assignment's reference and its variants (reference/<id>/variants/, see
grader/instructor/variants.py) in subset mode and with the whole dataset, and prints one line per
grading and then, per assignment: how many check verdicts (passed or not) agree between the two
modes, how many gradings got the verdict their variant must get, and the seconds each mode took.
`--keep DIR` keeps each result.json there and reuses it when the notebook and the assignment's
version are unchanged, so an interrupted run resumes (full mode takes hours on two cores).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grader.submission import notebook  # noqa: E402
from grader import paths, pipeline, assignment as spec  # noqa: E402
from grader.instructor import variants  # noqa: E402
from grader.result import GradeResult  # noqa: E402
from grader.scoring import DataMode  # noqa: E402

REFERENCE = variants.Variant("reference", Path(), variants.VariantMeta(
    label="the reference solution", verdict=variants.Verdict.CORRECT))


@dataclasses.dataclass
class Graded:
    verdicts: dict[str, bool]  # check id -> passed
    problems: list[str]  # how it misses the variant's verdict
    seconds: float
    score: float | None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assignment", "-a", action="append", metavar="ID",
                        help="this assignment (repeatable; default: every one with a dataset)")
    parser.add_argument("--course", type=Path, metavar="DIR",
                        help="the course folder holding assignments/ and reference/ (default: "
                             "$GRADER_COURSE, as for grader)")
    parser.add_argument("--variant", action="append", help="only these (file stems; "
                        "'reference' for the reference)")
    parser.add_argument("--modes", default="subset,full")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--keep", type=Path, help="keep and reuse result.json files here")
    parser.add_argument("--full-timeout", type=float, default=4 * 3600,
                        help="seconds for a whole notebook, and for any one cell, in full mode")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    assignments = chosen_assignments(parser, args)
    table = []
    for assignment in assignments:
        aid = assignment.id
        chosen = [REFERENCE, *variants.load_all(assignment)]
        if args.variant:
            chosen = [v for v in chosen if v.name in args.variant]
        graded: dict[tuple[str, str], Graded] = {}
        for v in chosen:
            for mode in modes:
                g = grade(assignment, v, mode, args)
                graded[(v.name, mode)] = g
                verdict = "as it must" if not g.problems else "MISSED: " + "; ".join(g.problems)
                print(f"{aid} {v.name} [{mode}] {g.score}/{assignment.max_score:g} "
                      f"{g.seconds:.0f}s {verdict}", flush=True)
        table.append(summary(aid, chosen, modes, graded))
    print()
    print(f"{'assignment':<15} {'gradings':>8} {'verdicts agree':>15} "
          + " ".join(f"{'as must (' + m + ')':>17} {m + ' s':>9}" for m in modes))
    for row in table:
        print(f"{row['assignment']:<15} {row['variants']:>8} {row['agree']:>15} "
              + " ".join(f"{row['met'][m]:>17} {row['seconds'][m]:>9.0f}" for m in modes))


def chosen_assignments(parser: argparse.ArgumentParser, args: argparse.Namespace
                       ) -> list[spec.Assignment]:
    """--assignment's, or every assignment of the course that reads a dataset (subset mode
    means nothing to the others); an unknown or broken one ends the run with its message."""
    if args.course is not None:
        if not args.course.is_dir():
            parser.error(f"--course {args.course}: no such folder")
        paths.set_course(args.course)
    try:
        if args.assignment:
            chosen = [spec.load(aid) for aid in dict.fromkeys(args.assignment)]
        else:
            chosen = [spec.load(aid) for aid in spec.available()]
    except spec.SpecError as exc:
        parser.error(str(exc))
    without = [a.id for a in chosen if a.data is None]
    if args.assignment and without:
        parser.error(f"{', '.join(without)} read(s) no dataset: subset mode does not apply")
    return [a for a in chosen if a.data is not None]


def grade(assignment: spec.Assignment, variant: variants.Variant, mode: str,
          args: argparse.Namespace) -> Graded:
    path = assignment.reference if variant is REFERENCE else variant.path
    kept = None
    if args.keep:
        kept = args.keep / assignment.id / f"{variant.name}.{mode}.json"
        cached = _reuse(kept, assignment, path)
        if cached is not None:
            return _graded(variant, cached)
    full = mode == "full"
    if full:  # a whole 15-epoch fit on 48,000 images exceeds the spec's per-cell limit here
        limits = assignment.limits.model_copy(update={"cell_timeout": args.full_timeout})
        assignment = dataclasses.replace(assignment, limits=limits)
    options = pipeline.Options(data_dir=args.data_dir, mode=DataMode(mode),
                               timeout=args.full_timeout if full else None)
    started = time.monotonic()
    result = pipeline.grade(path, assignment, options)
    result = result.model_copy(update={"timings": {
        **result.timings, "bench_seconds": round(time.monotonic() - started, 1)}})
    if kept is not None:
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_text(result.to_json())
    return _graded(variant, result)


def _reuse(path: Path, assignment: spec.Assignment, notebook_path: Path) -> GradeResult | None:
    try:
        data = GradeResult.from_json(path.read_bytes())
    except (OSError, ValueError):
        return None
    if data.assignment_version != assignment.version_key() or \
            data.notebook_sha256 != notebook.file_sha256(notebook_path):
        return None
    return data


def _graded(variant: variants.Variant, result: GradeResult) -> Graded:
    return Graded(variants.passed(result), variants.verdict_problems(variant, result),
                  result.timings.get("bench_seconds") or result.timings.get("total") or 0.0,
                  result.score)


def summary(aid: str, chosen: list[variants.Variant], modes: list[str],
            graded: dict[tuple[str, str], Graded]) -> dict:
    agree = total = 0
    if len(modes) == 2:
        for v in chosen:
            first, second = graded[(v.name, modes[0])], graded[(v.name, modes[1])]
            for cid in first.verdicts.keys() | second.verdicts.keys():
                total += 1
                agree += first.verdicts.get(cid) == second.verdicts.get(cid)
    return {"assignment": aid, "variants": len(chosen),
            "agree": f"{agree}/{total}" if total else "-",
            "met": {m: f"{sum(not graded[(v.name, m)].problems for v in chosen)}/{len(chosen)}"
                    for m in modes},
            "seconds": {m: sum(graded[(v.name, m)].seconds for v in chosen) for m in modes}}


if __name__ == "__main__":
    main()
