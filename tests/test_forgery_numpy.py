"""numpy-backprop, as a determined student would try it (issue 11, items 4 and 6).

Each forgery is the reference notebook with its backward cell replaced, graded through the whole
pipeline under bubblewrap: the functions run in the grader's numpy clean room, from the
notebook's source. None of them may earn backward-pass points, and each message must say why.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import numpy as np
import pytest

from grader import pipeline, assignment as spec
from grader.cleanroom import numpy_run
from grader.execution import sandbox

pytestmark = pytest.mark.hostile

ASSIGNMENT = "numpy-backprop"
REPO = Path(__file__).resolve().parents[1]
# Every checkout of the grader a student could guess, this one included.
GRADER_ROOTS = sorted({str(REPO), *(str(p) for p in REPO.parent.iterdir()
                                    if (p / "grader" / "checks").is_dir())})
# Where this machine's packages live: a forger who knows the course's machine knows this too.
SITE_PACKAGES = [str(Path(np.__file__).resolve().parents[1])]

# Central differences of the student's own forward_propagation, one pair per weight: right to
# about 1e-9 on the homework's network, and 16,002 forward passes on the grader's wide one.
FD_BACKWARD = """
def back_propagation(X, Y_T, weights):
    def loss(w):
        Y = forward_propagation(X, w)[0]
        return np.sum((Y - Y_T) ** 2) / (2 * X.shape[0])
    eps = 1e-6
    gradients = {}
    for name in ('W1', 'b1', 'W2', 'b2'):
        value = np.array(weights[name], dtype=float)
        grad = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            for sign in (1, -1):
                moved = dict(weights)
                v = value.copy()
                v[idx] += sign * eps
                moved[name] = v if v.ndim else float(v)
                grad[idx] += sign * loss(moved) / (2 * eps)
        gradients[name] = grad if grad.ndim else float(grad)
    return gradients, loss(weights)
"""
# The same, never calling forward_propagation (a counter of its calls would see nothing).
FD_INLINE_BACKWARD = FD_BACKWARD.replace(
    "        Y = forward_propagation(X, w)[0]",
    "        H = 1 / (1 + np.exp(-(X @ np.asarray(w['W1']).T + w['b1'])))\n"
    "        Y = 1 / (1 + np.exp(-(H @ w['W2'] + w['b2'])))")
# Finite differences that refuse any network but the homework's, to dodge a wide probe.
FD_DODGE_BACKWARD = FD_BACKWARD.replace(
    "    def loss(w):",
    "    if np.shape(weights['W1']) != (3, 2):\n"
    "        raise ValueError('written for the homework network only')\n"
    "    def loss(w):")
TAPE_BACKWARD = """
import tensorflow as tf

def back_propagation(X, Y_T, weights):
    w = {k: tf.Variable(np.asarray(weights[k], dtype='float64')) for k in ('W1', 'b1', 'W2', 'b2')}
    with tf.GradientTape() as tape:
        H = tf.sigmoid(tf.matmul(tf.constant(X), tf.transpose(w['W1'])) + w['b1'])
        Y = tf.sigmoid(tf.linalg.matvec(H, w['W2']) + w['b2'])
        L = tf.reduce_sum((Y - tf.constant(Y_T, dtype='float64')) ** 2) / (2 * X.shape[0])
    grads = tape.gradient(L, w)
    return {k: g.numpy() for k, g in grads.items()}, float(L)
"""
# GradientTape imported out of the source's sight, the clean room's import blocker removed
# first, and every trace deleted from sys.modules afterwards.
TAPE_CLEANED_BACKWARD = f"""
def back_propagation(X, Y_T, weights):
    import sys
    sys.meta_path[:] = [f for f in sys.meta_path if 'Block' not in type(f).__name__]
    sys.path += {SITE_PACKAGES!r}
    tf = getattr(__builtins__, '__imp' + 'ort__')('tensor' + 'flow')
    w = {{k: tf.Variable(np.asarray(weights[k], dtype='float64')) for k in ('W1', 'b1', 'W2', 'b2')}}
    with tf.GradientTape() as tape:
        H = tf.sigmoid(tf.matmul(tf.constant(X), tf.transpose(w['W1'])) + w['b1'])
        Y = tf.sigmoid(tf.linalg.matvec(H, w['W2']) + w['b2'])
        L = tf.reduce_sum((Y - tf.constant(Y_T, dtype='float64')) ** 2) / (2 * X.shape[0])
    grads = {{k: g.numpy() for k, g in tape.gradient(L, w).items()}}
    for name in [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]:
        del sys.modules[name]
    return grads, float(L)
"""
GRADER_REFERENCE_BACKWARD = f"""
def back_propagation(X, Y_T, weights):
    import sys
    sys.meta_path[:] = [f for f in sys.meta_path if 'Block' not in type(f).__name__]
    sys.path[:0] = {GRADER_ROOTS!r} + {SITE_PACKAGES!r}
    from grader.checks import numpy_reference
    out = numpy_reference.backward(X, Y_T, weights)
    return {{k: out[k] for k in ('W1', 'b1', 'W2', 'b2')}}, float(out['L'])
"""
# The grader's files read as files: the reference solution's cells, or its numpy_reference.py.
READ_FILES_BACKWARD = f"""
def back_propagation(X, Y_T, weights):
    import json, os
    for root in {GRADER_ROOTS!r}:
        try:
            nb = json.load(open(os.path.join(root, 'reference', 'numpy-backprop',
                                             'numpy-backprop-solution.ipynb')))
            cells = [''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code']
            break
        except OSError:
            pass
        try:
            cells = [open(os.path.join(root, 'grader', 'checks', 'numpy_reference.py')).read()
                     .replace('from __future__ import annotations', '')
                     .replace('from ..', 'from grader.')]
            break
        except OSError:
            pass
    else:
        raise FileNotFoundError('none of the grader files could be read')
    space = {{'np': np}}
    for source in cells:
        exec(source.replace('gradients, L = back_propagation(X, Y, weights)', ''), space)
    return space['back_propagation'](X, Y_T, weights)
"""


@pytest.fixture(scope="module")
def assignment():
    return spec.load(ASSIGNMENT)


@pytest.fixture(scope="module")
def bwrap():
    if sandbox.resolve("auto") != "bwrap":
        pytest.skip("bubblewrap cannot create namespaces here")
    return "bwrap"


def _notebook(tmp_path: Path, assignment, name: str, backward: str) -> Path:
    nb = copy.deepcopy(nbformat.read(assignment.reference, as_version=4))
    for cell in nb.cells:
        if "backward" in cell.metadata.get("tags", []):
            cell.source = backward
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def _grade(path: Path, assignment, mode: str = "bwrap"):
    result = pipeline.grade(path, assignment, pipeline.Options(sandbox=mode))
    return result, {c.id: c for c in result.checks}


@pytest.mark.slow
def test_the_honest_reference_still_gets_full_marks_and_the_starter_nothing(assignment, bwrap):
    result, checks = _grade(assignment.reference, assignment)
    assert result.score == 10, {k: c.message for k, c in checks.items()}
    probe = checks["backward"].details["probe"]
    assert probe["status"] == "passed" and probe["seconds"] < probe["limit"] / 10
    assert "enforced" in checks["numpy-only"].message and result.sandbox == "bwrap"
    starter, _ = _grade(assignment.starter, assignment)
    assert starter.score == 0


@pytest.mark.slow
@pytest.mark.parametrize("name, source", [("fd", FD_BACKWARD), ("fd-inline", FD_INLINE_BACKWARD)])
def test_finite_differences_earn_no_backward_points(tmp_path, assignment, bwrap, name, source):
    result, checks = _grade(_notebook(tmp_path, assignment, name, source), assignment)
    backward = checks["backward"]
    assert backward.points == 0 and checks["gradient-check"].points == 0
    assert "looks like finite differences: no backward-pass points" in backward.message
    assert "8,001 weights" in backward.message
    assert backward.details["probe"]["status"] == "too_slow"
    # Right on the homework's network: only the probe tells them apart.
    assert "differs from the reference" not in backward.message
    assert checks["forward"].points == 2 and result.score == 3


@pytest.mark.slow
def test_finite_differences_that_refuse_a_wider_network_earn_nothing(tmp_path, assignment, bwrap):
    _, checks = _grade(_notebook(tmp_path, assignment, "fd-dodge", FD_DODGE_BACKWARD), assignment)
    assert checks["backward"].points == 0 and checks["gradient-check"].points == 0
    assert "written for the homework network only" in checks["backward"].message
    assert "not finite differences" in checks["backward"].message


@pytest.mark.slow
def test_finite_differences_are_caught_without_a_sandbox_too(assignment):
    """The probe's clock is the grader's, whatever the sandbox."""
    nb = copy.deepcopy(nbformat.read(assignment.reference, as_version=4))
    for cell in nb.cells:
        if "backward" in cell.metadata.get("tags", []):
            cell.source = FD_BACKWARD
    obj = numpy_run.measure(nb, "back_propagation", assignment.objects[0].options, 7, "none")
    assert obj.data["room"]["probe"]["status"] == "too_slow"
    assert obj.data["room"]["enforced"] is False


@pytest.mark.parametrize("name, source", [("tape", TAPE_BACKWARD),
                                          ("tape-cleaned", TAPE_CLEANED_BACKWARD)])
@pytest.mark.slow
def test_gradient_tape_earns_nothing(tmp_path, assignment, bwrap, name, source):
    result, checks = _grade(_notebook(tmp_path, assignment, name, source), assignment)
    assert checks["backward"].points == 0 and checks["gradient-check"].points == 0
    assert "tensorflow" in checks["backward"].message
    assert checks["numpy-only"].points == 0
    assert result.score == 2  # the forward pass is the student's own numpy


@pytest.mark.slow
def test_the_graders_own_reference_cannot_be_imported(tmp_path, assignment, bwrap):
    result, checks = _grade(_notebook(tmp_path, assignment, "grader-ref", GRADER_REFERENCE_BACKWARD),
                            assignment)
    assert checks["backward"].points == 0 and checks["gradient-check"].points == 0
    assert "No module named 'grader" in checks["backward"].message, checks["backward"].message
    assert result.score == 2


@pytest.mark.slow
def test_the_graders_files_cannot_be_read(tmp_path, assignment, bwrap):
    result, checks = _grade(_notebook(tmp_path, assignment, "read-files", READ_FILES_BACKWARD),
                            assignment)
    assert checks["backward"].points == 0 and checks["gradient-check"].points == 0
    assert "none of the grader files could be read" in checks["backward"].message, \
        checks["backward"].message
    assert result.score == 2
