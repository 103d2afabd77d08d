"""Where the project's assignment specs and reference material live."""

from __future__ import annotations

import os
from pathlib import Path

# An installed grader (pip install -e .) finds the specs beside the package; a course can
# point elsewhere with GRADER_HOME (a folder holding assignments/ and reference/).
PROJECT_ROOT = Path(os.environ.get("GRADER_HOME") or Path(__file__).resolve().parent.parent)
ASSIGNMENTS_DIR = PROJECT_ROOT / "assignments"
REFERENCE_DIR = PROJECT_ROOT / "reference"
