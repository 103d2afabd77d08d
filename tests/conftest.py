"""Shared fixtures: the real datasets beside the repository (../shared/data in CI), and for
modules that set ASSIGNMENT, that assignment and a grader of notebooks that grades each once."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

import notebook_factory as nf
from grader import pipeline, spec, variants
from grader.scoring import GradeResult

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (SHARED_DATA / "fashion-mnist").is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="module")
def assignment(request) -> spec.Assignment:
    return spec.load(request.module.ASSIGNMENT)


@pytest.fixture(scope="module")
def grade(tmp_path_factory, assignment, data_dir):
    """grade(name) grades notebook_factory.<name>(); grade(name, nb) grades nb. Each name is
    executed once per module, in a real kernel, and its result shared by the module's tests."""
    cache: dict[str, GradeResult] = {}

    def run(name: str, nb=None):
        if name not in cache:
            folder = tmp_path_factory.mktemp(name)
            path = nf.write(nb if nb is not None else getattr(nf, name)(), folder / f"{name}.ipynb")
            cache[name] = pipeline.grade(path, assignment, pipeline.Options(data_dir=data_dir))
        return cache[name]
    return run


@pytest.fixture(scope="module")
def grade_variant(grade, assignment):
    """grade_variant(name) grades reference/<id>/variants/<name>.ipynb once per module and
    returns the variant (its metadata says the verdict it must get) and the result."""
    def run(name: str):
        found = {v.name: v for v in variants.load_all(assignment)}
        variant = found[name]
        return variant, grade(f"variant-{name}", nbformat.read(variant.path, as_version=4))
    return run
