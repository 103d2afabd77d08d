"""Shared fixtures: the real datasets beside the repository (../shared/data in CI), and for
modules that set ASSIGNMENT, that assignment and a grader of notebooks that grades each once."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

import notebook_factory as nf
from grader import pipeline, assignment as spec
from grader.instructor import variants
from grader.cli import DATA_DIR_VARIABLE
from grader.data import sources
from grader.execution import runner
from grader.result import GradeResult

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
FETCH = "grader data --fetch"
REQUIRE_DATASETS = "GRADER_TESTS_REQUIRE_DATASETS"  # CI: a missing dataset fails, never skips
NOT_FOUND = "dataset not found: "  # the start of every skip reason for a missing dataset


def _given_folders() -> list[Path]:
    """Folders named for the tests, in order: $GRADER_DATA_DIR, then ../shared/data (CI's)."""
    named = os.environ.get(DATA_DIR_VARIABLE)
    return ([Path(named)] if named else []) + [SHARED_DATA]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """A folder holding the datasets where the grader finds them (`grader data`'s search): a
    folder named for the tests when it holds Fashion-MNIST, else one of links to wherever the
    grader's own search finds each dataset (Debian's package, the Keras cache)."""
    for folder in _given_folders():
        found = sources.locate("fashion-mnist", folder)
        if found is not None and found.origin == "data-dir":
            return folder.resolve()
    linked = tmp_path_factory.mktemp("datasets")
    for name, info in sources.DATASETS.items():
        found = sources.locate(name)
        if found is None:
            continue
        target = linked / (info.npz_name if found.layout == "npz" else name)
        target.symlink_to(found.where)
    require("fashion-mnist", linked)
    return linked


def require(name: str, folder: Path) -> None:
    """Skip, with the reason the run's last line counts, when `folder` lacks the dataset."""
    found = sources.locate(name, folder)
    if (found is None or found.origin != "data-dir") and os.environ.get(REQUIRE_DATASETS):
        pytest.fail(f"{NOT_FOUND}{name}, and {REQUIRE_DATASETS} says every test must run")
    if found is None or found.origin != "data-dir":
        pytest.skip(f"{NOT_FOUND}{name} (searched {', '.join(map(str, _given_folders()))}, "
                    f"the Keras cache and {sources.DEBIAN_DIR}; `{FETCH}` downloads it)")


@pytest.fixture(scope="session")
def mnist_dir(data_dir) -> Path:
    """data_dir, for a test that needs MNIST as well."""
    require("mnist", data_dir)
    return data_dir


def pytest_terminal_summary(terminalreporter) -> None:
    """One line naming the tests a missing dataset kept from running (by module), and the fix."""
    missing: dict[str, dict[str, int]] = {}  # dataset → module → tests
    for report in terminalreporter.stats.get("skipped", []):
        reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
        if NOT_FOUND in reason:
            name = reason.split(NOT_FOUND, 1)[1].split(" ", 1)[0]
            module = Path(report.location[0]).name
            missing.setdefault(name, {})[module] = missing.get(name, {}).get(module, 0) + 1
    if missing:
        total = sum(sum(m.values()) for m in missing.values())
        which = "; ".join(f"{name}: " + ", ".join(f"{m} {n}" for m, n in sorted(mods.items()))
                          for name, mods in sorted(missing.items()))
        terminalreporter.write_line(
            f"{total} tests did not run, their dataset not found ({which}): `{FETCH}` "
            f"downloads it where there is a network, or set {DATA_DIR_VARIABLE}")


_KERNELS_STARTED = [0]  # kernels this test process has started
_KERNELS_BEFORE = pytest.StashKey[int]()  # ... when a test's setup began


def pytest_configure(config) -> None:
    original = runner._GraderKernelManager.format_kernel_cmd

    def counted(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        _KERNELS_STARTED[0] += 1
        return original(self, *args, **kwargs)

    runner._GraderKernelManager.format_kernel_cmd = counted


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item) -> None:
    item.stash[_KERNELS_BEFORE] = _KERNELS_STARTED[0]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """`pytest -m "not slow"` is the contributors' fast lane: a test not marked slow that starts
    a kernel in this process (its module's fixtures included) fails, so the lane stays free of
    kernels as tests are added."""
    outcome = yield
    report = outcome.get_result()
    if call.when != "teardown" or item.get_closest_marker("slow") or report.failed:
        return
    if _KERNELS_STARTED[0] > item.stash.get(_KERNELS_BEFORE, _KERNELS_STARTED[0]):
        report.outcome = "failed"
        report.longrepr = (f"{item.nodeid} starts a kernel: mark it @pytest.mark.slow, so the "
                           "fast lane (-m 'not slow') stays fast")


@pytest.fixture(scope="module")
def assignment(request) -> spec.Assignment:
    return spec.load(request.module.ASSIGNMENT)


@pytest.fixture(scope="module")
def grade(tmp_path_factory, assignment, data_dir):
    """grade(name) grades notebook_factory.<name>(); grade(name, nb) grades nb. Each name is
    executed once per module, in a real kernel, and its result shared by the module's tests."""
    cache: dict[str, GradeResult] = {}
    if assignment.data is not None:
        require(assignment.data.dataset, data_dir)

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
