"""`grader gradescope-bundle -a ID`: the zip Gradescope's autograder upload expects.

Gradescope unpacks the zip into /autograder/source, runs `setup.sh` once when it builds the
image (network available), then `run_autograder` per submission (the files in
/autograder/submission), and reads /autograder/results/results.json. The bundle carries this
grader's source with the one assignment's spec and reference material, so the image needs
nothing from this repository at run time.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

from .paths import PROJECT_ROOT
from .spec import Assignment

SETUP_SH = """#!/usr/bin/env bash
# Gradescope image set-up (Ubuntu, as root, with network): Python, the grader, the dataset.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq python3 python3-pip python3-venv >/dev/null
# bubblewrap sandboxes the kernel where user namespaces work; elsewhere the grader says it ran
# with process limits only (sandbox: "none" in the results).
apt-get install -y -qq bubblewrap >/dev/null || true
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install --quiet -e /autograder/source
{fetch_data}
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# One submission: grade the notebook, write Gradescope's results.json whatever happens.
set -uo pipefail
export PATH=/autograder/venv/bin:$PATH
results=/autograder/results/results.json
mkdir -p /autograder/results
shopt -s nullglob globstar
notebooks=(/autograder/submission/**/*.ipynb)
notebook=""
for nb in "${{notebooks[@]}}"; do  # the file named like the starter, else the first one
  case "$nb" in */.ipynb_checkpoints/*) continue ;; esac
  [ -z "$notebook" ] && notebook=$nb
  [ "$(basename "$nb")" = "{starter}" ] && notebook=$nb && break
done
fail() {{
  python3 - "$1" > "$results" <<'PY'
import json, sys
print(json.dumps({{"score": 0, "output": sys.argv[1], "output_format": "text", "tests": []}}))
PY
  exit 0
}}
[ -n "$notebook" ] || fail "No notebook (.ipynb) was found in your submission."
out=$(mktemp -d)  # fresh: never a stale result from another run
grader check "$notebook" --assignment {assignment} --out "$out" {check_args}
status=$?
if [ "$status" = 3 ]; then  # the grader's own failure: no results, so Gradescope flags the run
  echo "grader error (exit 3): nothing was scored; rerun the autograder once it is fixed" >&2
  rm -f "$results"
  exit 1
fi
[ -f "$out/result.json" ] || fail "The grader could not grade your notebook (exit $status)."
grader report "$out/result.json" --format gradescope --out "$results"
"""

FETCH_DATA = ("/autograder/venv/bin/python -c \"from grader import data; "
              "data.load('{dataset}', download=True)\"")


def files(assignment: Assignment, check_args: str = "") -> dict[str, bytes | Path]:
    """Archive name -> content (bytes) or a file to copy."""
    out: dict[str, bytes | Path] = {}
    fetch = FETCH_DATA.format(dataset=assignment.data.dataset) if assignment.data else ""
    out["setup.sh"] = SETUP_SH.format(fetch_data=fetch).encode()
    out["run_autograder"] = RUN_AUTOGRADER.format(
        starter=assignment.starter.name, assignment=assignment.id, check_args=check_args).encode()
    roots = [PROJECT_ROOT / "grader", assignment.folder, assignment.reference_dir]
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                out[path.relative_to(PROJECT_ROOT).as_posix()] = path
    for name in ("pyproject.toml", "README.md"):
        out[name] = PROJECT_ROOT / name
    return out


def write(assignment: Assignment, target: Path, check_args: str = "") -> list[str]:
    """Write the zip; returns the archive's names. Scripts are stored executable."""
    target.parent.mkdir(parents=True, exist_ok=True)
    names = []
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files(assignment, check_args).items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # reproducible bytes
            mode = 0o755 if name in ("setup.sh", "run_autograder") else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = content if isinstance(content, bytes) else content.read_bytes()
            archive.writestr(info, data)
            names.append(name)
    return names
