"""`grader gradescope-bundle -a ID`: the zip Gradescope's autograder upload expects.

Gradescope unpacks the zip into /autograder/source, runs `setup.sh` once when it builds the
image (network available), then `run_autograder` per submission (the files in
/autograder/submission), and reads /autograder/results/results.json. The bundle carries this
grader's source with the one assignment's starter, spec and calibration files (never a reference
notebook: grader/instructor/publish.py selects and checks them), so the image needs nothing from
this repository at run time.

The image's own python3 (3.10 on Gradescope's Ubuntu 22.04 images) is not used: setup.sh
installs the exact Python that calibration ran with (the `# python` line of
reference/<id>/constraints.txt) with uv, a standalone CPython build that needs no PPA, then the
grader with those constraints, so thresholds meet the versions they were measured with.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

from . import constraints, publish
from ..assignment import Assignment

SETUP_SH = """#!/usr/bin/env bash
# Gradescope image set-up (Ubuntu, as root, with network): the Python and package versions the
# thresholds were calibrated with, the grader, the dataset.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
PYTHON_VERSION={python}  # the `# python` line of {constraints}
CONSTRAINTS=/autograder/source/{constraints}
apt-get update -qq
apt-get install -y -qq curl ca-certificates >/dev/null
# bubblewrap sandboxes the kernel where user namespaces work; elsewhere the grader says it ran
# with process limits only (sandbox: "none" in the results).
apt-get install -y -qq bubblewrap >/dev/null || echo "setup.sh: bubblewrap is not available"
# uv installs that exact CPython (a standalone build: no PPA, whatever the image's python3 is).
export UV_INSTALL_DIR=/usr/local/bin UV_PYTHON_INSTALL_DIR=/autograder/python
if ! command -v uv >/dev/null; then
  curl -LsSf https://astral.sh/uv/install.sh | env INSTALLER_NO_MODIFY_PATH=1 sh
fi
uv python install "$PYTHON_VERSION"
uv venv --python "$PYTHON_VERSION" /autograder/venv
uv pip install --python /autograder/venv/bin/python --constraint "$CONSTRAINTS" \\
  -e /autograder/source
/autograder/venv/bin/python -c "import sys; v = '.'.join(map(str, sys.version_info[:3])); \\
assert v == '$PYTHON_VERSION', f'Python {{v}}, not $PYTHON_VERSION'"
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


class BundleError(Exception):
    """The assignment cannot be bundled yet (a usage error: say what to run)."""


def files(assignment: Assignment, check_args: str = "") -> dict[str, bytes | Path]:
    """Archive name -> content (bytes) or a file to copy."""
    lock = constraints.path_of(assignment)
    if not lock.is_file():
        raise BundleError(f"{assignment.id} has no {lock.relative_to(lock.parents[2])}: the "
                          "bundle installs the versions calibration used, so run `grader "
                          f"calibrate -a {assignment.id}` first (or `--constraints-only` in the "
                          "environment its thresholds were calibrated in)")
    python = constraints.python_version(lock.read_text())
    if python is None:
        raise BundleError(f"{lock} has no `# python X.Y.Z` line: rerun grader calibrate")
    out: dict[str, bytes | Path] = {}
    fetch = FETCH_DATA.format(dataset=assignment.data.dataset) if assignment.data else ""
    out["setup.sh"] = SETUP_SH.format(fetch_data=fetch, python=python,
                                      constraints=f"reference/{assignment.id}/constraints.txt"
                                      ).encode()
    out["run_autograder"] = RUN_AUTOGRADER.format(
        starter=assignment.starter.name, assignment=assignment.id, check_args=check_args).encode()
    out.update(publish.grading_files([assignment]))
    return out


def write(assignment: Assignment, target: Path, check_args: str = "") -> list[str]:
    """Write the zip; returns the archive's names. Scripts are stored executable. A bundle
    that would carry a solution is refused (publish.PublishError)."""
    content = files(assignment, check_args)
    publish.check_no_solution(content, [assignment])
    target.parent.mkdir(parents=True, exist_ok=True)
    names = []
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in content.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # reproducible bytes
            mode = 0o755 if name in ("setup.sh", "run_autograder") else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = content if isinstance(content, bytes) else content.read_bytes()
            archive.writestr(info, data)
            names.append(name)
    return names
