"""docs/authoring.md: its section of spec keys is generated from the spec's models and must be
current; every check and object kind is documented; the README links the guide."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from grader.assignment import tables as spec_format
from grader.instructor import authoring_doc as spec_reference

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "authoring.md"


def test_the_committed_key_reference_is_generated_from_the_models():
    proc = subprocess.run([sys.executable, "-m", "grader.instructor.authoring_doc", "--check"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr + " (run: python3 -m grader.instructor.authoring_doc)"


def test_a_change_to_the_models_is_drift(monkeypatch):
    """A key added to a table changes the generated section, and --check says so."""
    from pydantic import Field, create_model

    text = DOC.read_text(encoding="utf-8")
    assert spec_reference.replaced(text, spec_reference.render()) == text
    grown = create_model("ExecutionTable", __base__=spec_format.ExecutionTable,
                         gpu_seconds=(int, Field(1, description="a key the guide lacks")))
    monkeypatch.setattr(spec_format, "ExecutionTable", grown)
    assert "| `gpu_seconds` |" in spec_reference.render()
    assert spec_reference.main(["--check"]) == 1


def test_every_kind_is_documented():
    from grader.checks import REGISTRY

    text = DOC.read_text(encoding="utf-8")
    for kind in REGISTRY:
        assert kind in spec_reference.WHAT, f"check kind {kind!r}: add a line to WHAT"
        assert f'#### `kind = "{kind}"`' in text
    for kind in spec_format.object_kinds():
        assert f'#### `kind = "{kind}"`' in text
    for key in spec_format.KerasObject.model_fields:
        assert f"| `{key}` |" in text


def test_the_example_spec_in_the_guide_is_valid(tmp_path):
    """The guide's assignment.toml is what `grader list` accepts."""
    from grader import assignment as spec

    text = DOC.read_text(encoding="utf-8")
    start = text.index("```toml\n") + len("```toml\n")
    toml = text[start:text.index("```", start)]
    folder = tmp_path / "assignments" / "mnist-mlp"
    folder.mkdir(parents=True)
    (folder / "assignment.toml").write_text(toml)
    (folder / "mnist-mlp.ipynb").write_text("{}")
    assignment = spec.load("mnist-mlp", tmp_path / "assignments")
    assert assignment.max_score == 12


def test_the_readme_links_the_guide():
    assert "docs/authoring.md" in (REPO / "README.md").read_text(encoding="utf-8")
