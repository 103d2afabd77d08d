"""numpy-backprop (seed 004, Part 1): a forward and backward pass in numpy only.

Four layers of tests: the grader's reference implementation against the homework's printed
numbers; which definitions the clean room takes from a notebook's source; the checks on what
the clean room measured (a fresh interpreter per notebook, well under a second); whole
notebooks through the pipeline (a numpy-only kernel starts in about a second).
"""

from __future__ import annotations

import copy
import gc
import os
from pathlib import Path

import nbformat
import numpy as np
import pytest

from grader import checks, pipeline, assignment as spec
from grader.checks import backprop_checks
from grader.cleanroom import numpy_reference as ref
from grader.checks.context import GradingContext
from grader.cleanroom import numpy_run, source as cleanroom_source
from grader.errors import GraderError
from grader.execution.runner import ExecutionRecord
from grader.cleanroom.numpy_reference import perturbed

ASSIGNMENT = "numpy-backprop"

# Seed 004, In [7] and In [8]: "print(L)" and "pp.pprint(gradients)" for np.random.seed(0).
# The homework's solution printed dL/dW1 transposed (2, 3) and kept singleton axes on b1, b2.
SEED_L = 0.1332476222330792
SEED_GRADIENTS = {
    "W1": [[0.00244596, -0.00030765, -0.00034768],
           [0.00262019, -0.00024188, -0.000372]],
    "W2": [0.02216011, 0.02433097, 0.01797174],
    "b1": [[0.00492577, -0.00058023, -0.00065977]],
    "b2": [0.02924923],
}

SIGMOID = "import numpy as np\n\ndef sigmoid(z):\n    return 1/(1 + np.exp(-z))\n"

# Seed 004, In [5] and In [6], verbatim: b2 is added inside the dot product.
SEED_FORWARD = """
def forward_propagation(X, weights):
    Z1 = np.dot(X, weights['W1'].T) + weights['b1']
    H = sigmoid(Z1)

    Z2 = np.dot(H, weights['W2'].T + weights['b2'])
    Y = sigmoid(Z2)

    return Y, Z2, H, Z1
"""
SEED_BACKWARD = """
def back_propagation(X, Y_T, weights):
    N_points = X.shape[0]

    # forward propagation
    Y, Z2, H, Z1 = forward_propagation(X, weights)
    L = (1/(2*N_points)) * np.sum(np.square(Y - Y_T)) #RMSE Loss

    # back propagation
    dLdY = 1/N_points * (Y - Y_T)
    dLdZ2 = np.multiply(dLdY, (sigmoid(Z2)*(1-sigmoid(Z2))))

    dLdW2 = np.dot(H.T, dLdZ2)
    dLdb2 = np.sum(dLdZ2, axis=0, keepdims=True)

    dLdH = np.dot(dLdZ2[:,None], weights['W2'][None,:])
    dLdZ1 = np.multiply(dLdH, (sigmoid(Z1)*(1 - sigmoid(Z1))))

    dLdW1 = np.dot(X.T, dLdZ1)
    dLdb1 = np.sum(dLdZ1, axis=0, keepdims=True)

    gradients = {
        'W1': dLdW1,
        'b1': dLdb1,
        'W2': dLdW2,
        'b2': dLdb2,
    }

    return gradients, L
"""
# The seed's code with its one bug fixed: its layouts (W1 transposed, keepdims) are accepted.
FIXED_SEED_FORWARD = SEED_FORWARD.replace("weights['W2'].T + weights['b2'])",
                                          "weights['W2'].T) + weights['b2']")
HARDCODED_BACKWARD = f"""
def back_propagation(X, Y_T, weights):
    gradients = {{k: np.array(v) for k, v in {SEED_GRADIENTS!r}.items()}}
    return gradients, {SEED_L!r}
"""
# Consistent with nothing: dL/db2 forgets sigmoid'(Z2), everything else is right.
WRONG_DB2_BACKWARD = SEED_BACKWARD.replace(
    "dLdb2 = np.sum(dLdZ2, axis=0, keepdims=True)", "dLdb2 = np.sum(dLdY)")


# ---- the reference implementation ---------------------------------------------------------------

def test_reference_reproduces_the_homeworks_printed_numbers():
    case = ref.make_cases(12345)[0]  # the homework's inputs, whatever the run's seed
    assert case.weights["b2"] == 0 and case.X.shape == (1000, 2)
    got = ref.backward(case.X, case.Y_T, case.weights)
    assert got["L"] == pytest.approx(SEED_L, rel=1e-12)  # 0.1332476222330792
    for key, printed in SEED_GRADIENTS.items():
        want = np.squeeze(np.array(printed))
        have = got[key].T if key == "W1" else got[key]
        np.testing.assert_allclose(have, want, atol=5e-9)  # printed to 8 decimals
    assert got["W1"].shape == (3, 2) and got["b1"].shape == (3,) and np.ndim(got["b2"]) == 0


def test_reference_gradients_are_derivatives_of_its_loss():
    case = ref.make_cases(7)[ref.FD_CASE]
    assert case.b2_nonzero
    grads = ref.backward(case.X, case.Y_T, case.weights)
    losses = {}
    for sign in (1.0, -1.0):
        losses[sign] = np.array([
            ref.backward(case.X, case.Y_T, perturbed(case.weights, p, idx, sign * ref.FD_EPS))["L"]
            for p, idx in ref.perturbations()])
    numeric = ref.numerical_gradients(losses[1.0], losses[-1.0])
    for p in ref.PARAMS:
        np.testing.assert_allclose(grads[p], numeric[p], rtol=1e-5, atol=1e-9)


def test_b2_inside_the_dot_product_is_right_only_when_b2_is_zero():
    cases = ref.make_cases(3)
    for case in cases:
        good = ref.backward(case.X, case.Y_T, case.weights)
        bad = ref.backward(case.X, case.Y_T, case.weights, b2_inside=True)
        same = all(np.allclose(good[k], bad[k]) for k in good)
        assert same == (not case.b2_nonzero), case.name
    assert [c.b2_nonzero for c in cases] == [False, False, True, True]


def test_inputs_follow_the_seed_and_only_the_seed():
    a, b, c = ref.make_cases(1), ref.make_cases(1), ref.make_cases(2)
    for x, y in zip(a, b):
        assert x.name == y.name and np.array_equal(x.X, y.X) and x.weights["b2"] == y.weights["b2"]
    assert np.array_equal(a[0].X, c[0].X)  # the homework's inputs never change
    assert not np.array_equal(a[2].X, c[2].X)
    assert a[3].X.shape == (1, 2)  # one example


# ---- checks on harvests made in this process ----------------------------------------------------

@pytest.fixture(scope="module")
def assignment():
    return spec.load(ASSIGNMENT)


def notebook_of(*cells: str):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])


def measure(nb, assignment, *, run_seed: int = 2024, call_timeout: float | None = None,
            sandbox: str = "none"):
    obj = assignment.objects[0]
    options = obj.options.model_copy(update={"call_timeout": call_timeout}) if call_timeout \
        else obj.options
    return {obj.name: numpy_run.measure(nb, obj.name, options, run_seed, sandbox)}


def grade_notebook(nb, assignment, *, notes: dict | None = None, **kwargs):
    """The clean room on a notebook's definitions, then the checks; {check id: result}."""
    ctx = GradingContext(measure(nb, assignment, **kwargs), {}, {}, ExecutionRecord(), notebook=nb)
    ctx.notes.update(notes or {})
    return {s.id: checks.run(s, ctx) for s in assignment.checks}


def grade_source(tmp_path: Path, assignment, source: str, **kwargs):
    """Functions defined in one code cell."""
    return grade_notebook(notebook_of(source), assignment, **kwargs)


def _reference_functions() -> str:
    nb = nbformat.read(spec.load(ASSIGNMENT).reference, as_version=4)
    tagged = {t: c.source for c in nb.cells for t in c.metadata.get("tags", [])}
    return SIGMOID + tagged["forward"] + "\n" + tagged["backward"]


def test_reference_functions_score_full_marks(tmp_path, assignment):
    results = grade_source(tmp_path, assignment, _reference_functions())
    assert {k: r.status for k, r in results.items()} == dict.fromkeys(results, "passed")
    assert sum(r.points for r in results.values()) == assignment.max_score == 10


def test_the_seeds_layouts_are_accepted(tmp_path, assignment):
    """dL/dW1 as (2, 3), b1 as (1, 3), b2 as (1,): how the homework itself printed them."""
    results = grade_source(tmp_path, assignment, SIGMOID + FIXED_SEED_FORWARD + SEED_BACKWARD)
    assert all(r.status == "passed" for r in results.values()), {k: r.message for k, r in results.items()}
    assert "transposed" in results["backward"].message


def test_b2_inside_the_dot_product_costs_one_point_once_and_is_named(tmp_path, assignment):
    """The seed's mistake: Y and Z2 earn nothing in the forward check (the formula is wrong even
    where b2 = 0 hides it); the gradients, the chain rule at the student's own forward values,
    are not charged for it again."""
    results = grade_source(tmp_path, assignment, SIGMOID + SEED_FORWARD + SEED_BACKWARD)
    forward, backward, fd = results["forward"], results["backward"], results["gradient-check"]
    assert forward.status == "partial" and forward.points == pytest.approx(1.0)
    assert "Y and Z2 differ from the reference when b2 ≠ 0" in forward.message
    assert "inside the dot product" in forward.message and "H and Z1 are right" in forward.message
    assert "H differs" not in forward.message and "Z1 differs" not in forward.message
    # Graded on their own forward pass: L and every gradient right, the mistake named once more.
    assert backward.status == "passed" and backward.points == 5, backward.message
    assert "inside the dot product" in backward.message and "charged once" in backward.message
    assert fd.status == "passed", fd.message
    assert "charged once" in fd.message
    assert results["numpy-only"].status == "passed"
    assert sum(r.points for r in results.values()) == 9


def test_hardcoded_printed_numbers_earn_no_backward_points(tmp_path, assignment):
    results = grade_source(tmp_path, assignment, SIGMOID + FIXED_SEED_FORWARD + HARDCODED_BACKWARD)
    assert results["backward"].points == 0
    assert "typed in instead of computed" in results["backward"].message
    assert results["gradient-check"].points == 0  # a constant L has zero derivatives
    assert "dL/db2 is not the derivative" in results["gradient-check"].message


def test_gradient_check_names_the_inconsistent_gradient(tmp_path, assignment):
    results = grade_source(tmp_path, assignment, SIGMOID + FIXED_SEED_FORWARD + WRONG_DB2_BACKWARD)
    fd = results["gradient-check"]
    assert fd.points == pytest.approx(1.5) and "dL/db2 is not the derivative" in fd.message
    for other in ("dL/dW1", "dL/db1", "dL/dW2"):
        assert f"{other} is not" not in fd.message
    assert "dL/db2 differs from the reference on every input set" in results["backward"].message
    assert results["backward"].points == pytest.approx(4.0)


def test_numpy_only_reads_the_imports_the_functions_depend_on(tmp_path, assignment):
    source = _reference_functions()
    unused = grade_notebook(notebook_of("%matplotlib inline\nimport tensorflow as tf", source), assignment)
    assert unused["numpy-only"].status == "passed"  # an import no graded function uses
    assert "also imports tensorflow" in unused["numpy-only"].message
    used = source.replace("def back_propagation(X, Y_T, weights):",
                          "import tensorflow as tf\n\ndef back_propagation(X, Y_T, weights):\n"
                          "    tf.constant(0)")
    results = grade_notebook(notebook_of(used), assignment)
    assert results["numpy-only"].points == 0 and "tensorflow" in results["numpy-only"].message
    assert results["forward"].status == "passed"  # the rest is graded on its merits
    assert results["backward"].points == 0  # tensorflow cannot be imported in the clean room
    assert "numpy-only clean room" in results["backward"].message
    found = backprop_checks.notebook_imports(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("!pip install torch\nfrom torch import nn\nimport numpy as np"),
        nbformat.v4.new_code_cell("jax = __import__('jax')\nimport importlib\n"
                                  "ag = importlib.import_module('autograd.numpy')"),
        nbformat.v4.new_code_cell("import tensorflow as tf\nthis is not python"),
    ]))
    assert [(c, m) for c, m, _ in found] == [(1, "torch"), (1, "numpy"), (2, "jax"),
                                              (2, "importlib"), (2, "autograd"), (3, "tensorflow")]


@pytest.mark.slow
def test_numpy_only_says_when_it_was_not_enforced(tmp_path, assignment):
    none = grade_source(tmp_path, assignment, _reference_functions(), sandbox="none")["numpy-only"]
    assert none.points == 1 and "NOT enforced" in none.message and none.details["enforced"] is False
    bwrap = grade_source(tmp_path, assignment, _reference_functions(), sandbox="bwrap")["numpy-only"]
    assert bwrap.points == 1 and "enforced: the functions ran in a clean room" in bwrap.message
    assert bwrap.details["enforced"] is True


def test_the_clean_room_takes_only_the_definitions_the_functions_need():
    nb = notebook_of(
        "import numpy as np\nimport matplotlib.pyplot as plt\nimport pprint\npp = pprint.PrettyPrinter()",
        "%matplotlib inline\nSCALE = 2\nprint('training...')\nraise RuntimeError('a plot failed')",
        "def sigmoid(z):\n    return 0.0  # replaced below",
        "def sigmoid(z):\n    return 1/(1 + np.exp(-z))\nthis is not python (",
        "def sigmoid(z):\n    return SCALE * 1/(1 + np.exp(-z)) / SCALE",
        "def forward_propagation(X, weights):\n    return sigmoid(X)",
        "def back_propagation(X, Y_T, weights):\n    return forward_propagation(X, weights)",
        "gradients, L = back_propagation(X, Y, weights)\npp.pprint(gradients)")
    got = cleanroom_source.extract(nb, ["back_propagation", "forward_propagation"])
    assert got.found == {"back_propagation": 7, "forward_propagation": 6} and got.missing == []
    assert [cell for cell, _ in got.chunks] == [1, 2, 5, 6, 7]  # the last sigmoid; no prints
    assert got.chunks[1][1] == "SCALE = 2" and got.skipped_cells == [4]
    assert [m for _, m, _ in got.imports] == ["numpy"]  # matplotlib and pprint are not needed
    assert cleanroom_source.extract(nb, ["nothing"]).missing == ["nothing"]


def test_notebooks_as_written_run_in_the_clean_room(tmp_path, assignment):
    """Windows line endings, Colab's shell lines, a main guard, a class holding the pass."""
    forward, backward = (_reference_functions().split("def back_propagation")[0],
                         "def back_propagation" + _reference_functions().split("def back_propagation")[1])
    nb = notebook_of(
        "!pip install numpy\r\n%matplotlib inline\r\nimport numpy as np\r\n",
        "if __name__ == '__main__':\n" + "".join("    " + l + "\n" for l in forward.splitlines()),
        "class Solution:\n    pass\n\n" + backward.replace("\n", "\r\n"),
        "solution = Solution()\nprint(back_propagation)")
    results = grade_notebook(nb, assignment)
    assert {k: r.status for k, r in results.items()} == dict.fromkeys(results, "passed"), \
        {k: r.message for k, r in results.items()}


def test_a_seed_other_than_the_graders_is_refused(tmp_path, assignment):
    results = grade_source(tmp_path, assignment, _reference_functions(), notes={"run_seed": 99})
    assert all(r.points == 0 and "not run on the grader's inputs" in r.message for r in results.values())


def test_tampered_outputs_do_not_pass(tmp_path, assignment):
    nb = notebook_of(_reference_functions())
    objects = measure(nb, assignment)
    obj = objects["back_propagation"]
    obj.arrays = {k: np.ones_like(v) for k, v in obj.arrays.items()}
    ctx = GradingContext(objects, {}, {}, ExecutionRecord(), notebook=nb)
    results = {s.id: checks.run(s, ctx) for s in assignment.checks}
    assert results["forward"].points == 0 and results["backward"].points == 0


@pytest.mark.slow
def test_hanging_exiting_and_missing_functions_are_contained(tmp_path, assignment):
    hang = SIGMOID + ("def forward_propagation(X, weights):\n    raise SystemExit(3)\n"
                      "def back_propagation(X, Y_T, weights):\n    while True:\n        pass\n")
    results = grade_source(tmp_path, assignment, hang, call_timeout=0.2)
    assert "forward_propagation failed on every input set: SystemExit: 3" in results["forward"].message
    assert "did not return within 0.2 s" in results["backward"].message
    assert sum(r.points for r in results.values()) == 0
    missing = grade_source(tmp_path / "m", assignment, SIGMOID)
    assert all("no cell of the notebook defines `back_propagation`" in r.message for r in missing.values())
    wrong = grade_source(tmp_path / "w", assignment, "back_propagation = 42")
    assert all("`back_propagation` is not callable" in r.message for r in wrong.values())
    no_forward = grade_source(tmp_path / "f", assignment, SIGMOID + "forward_propagation = None\n" +
                              SEED_BACKWARD.replace("forward_propagation(X, weights)",
                                                    "_fwd(X, weights)") + FIXED_SEED_FORWARD.replace(
                                  "def forward_propagation", "def _fwd"))
    assert "no function `forward_propagation`" in no_forward["forward"].message
    assert no_forward["backward"].status == "passed"


# ---- whole notebooks through the pipeline ----------------------------------------------------------

def _variant(tmp_path: Path, name: str, extra_first: str | None = None, **cells: str) -> Path:
    """The reference notebook with the tagged cells replaced (and a cell put first)."""
    nb = copy.deepcopy(nbformat.read(spec.load(ASSIGNMENT).reference, as_version=4))
    for cell in nb.cells:
        for tag in cell.metadata.get("tags", []):
            if tag in cells:
                cell.source = cells[tag]
    if extra_first:
        nb.cells.insert(1, nbformat.v4.new_code_cell(extra_first))
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def _grade(path: Path, assignment):
    return pipeline.grade(path, assignment, pipeline.Options(sandbox="none"))


def _by_id(result):
    return {c.id: c for c in result.checks}


@pytest.mark.slow
def test_pipeline_reference_scores_full_marks(assignment):
    result = _grade(assignment.reference, assignment)
    assert [(c.id, c.message) for c in result.checks if c.status != "passed"] == []
    assert result.score == result.max_score == 10
    assert result.execution.status == "completed" and result.cell_errors == []
    assert result.models["back_propagation"].status == "found"


@pytest.mark.slow
def test_grading_many_notebooks_in_one_process_leaves_no_descriptor_open(assignment):
    """A batch worker or a test session grades notebook after notebook in one process. Each
    grading once left its kernel's zmq sockets and contexts open (~14 descriptors), until the
    process passed 1,024 and select() failed."""
    def open_descriptors() -> int:
        gc.collect()  # a finished process's pipes close when its Popen is collected
        return len(os.listdir("/proc/self/fd"))

    _grade(assignment.reference, assignment)  # first use: imports, caches, the dataset maps
    before = open_descriptors()
    for _ in range(3):
        assert _grade(assignment.reference, assignment).score == 10
    assert open_descriptors() <= before


@pytest.mark.slow
def test_pipeline_starter_scores_zero_and_says_why(assignment):
    result = _grade(assignment.starter, assignment)
    assert result.score == 0
    for check in result.checks:
        assert check.status == "failed" and check.message
    for key in ("forward", "backward", "gradient-check"):
        assert "NotImplementedError" in _by_id(result)[key].message
    assert "no working back_propagation" in _by_id(result)["numpy-only"].message
    assert any(e.ename == "NotImplementedError" for e in result.cell_errors)


@pytest.mark.slow
def test_pipeline_seed_solution_loses_the_b2_point(tmp_path, assignment):
    result = _grade(_variant(tmp_path, "seed", forward=SEED_FORWARD, backward=SEED_BACKWARD), assignment)
    checks_ = _by_id(result)
    assert result.score == 9
    assert "inside the dot product" in checks_["forward"].message and checks_["forward"].points == 1
    assert result.cell_errors == []  # the homework's own run (b2 = 0) looks fine


@pytest.mark.slow
def test_pipeline_hardcoded_numbers_lose_points(tmp_path, assignment):
    result = _grade(_variant(tmp_path, "hardcoded", backward=HARDCODED_BACKWARD), assignment)
    checks_ = _by_id(result)
    assert checks_["backward"].points == 0 and checks_["gradient-check"].points == 0
    assert result.score <= 3  # the forward pass (2) and numpy-only (1) are real


@pytest.mark.slow
def test_pipeline_an_unused_tensorflow_import_costs_nothing(tmp_path, assignment):
    path = _variant(tmp_path, "tf", extra_first="import tensorflow as tf")
    result = _grade(path, assignment)
    checks_ = _by_id(result)
    assert checks_["numpy-only"].points == 1 and "also imports tensorflow" in checks_["numpy-only"].message
    assert result.score == 10


@pytest.mark.slow
def test_pipeline_grades_the_same_file_on_the_same_grader_chosen_inputs(tmp_path, assignment):
    """The seed of the inputs comes from the grader (the notebook's hash), not from the kernel:
    the seed's buggy solution gets the same points and messages twice, and another file gets
    other inputs."""
    path = _variant(tmp_path, "seed", forward=SEED_FORWARD, backward=SEED_BACKWARD)
    first, second = _grade(path, assignment), _grade(path, assignment)
    assert [(c.id, c.points, c.message) for c in first.checks] == \
        [(c.id, c.points, c.message) for c in second.checks]
    ours = pipeline.run_seed(first.notebook_sha256, assignment)
    other = pipeline.run_seed(_grade(assignment.reference, assignment).notebook_sha256, assignment)
    assert ours != other


SEED_NOTEBOOK = Path(__file__).parent / "student_notebooks" / "seed004_part1.ipynb"


@pytest.mark.slow
def test_the_seeds_own_student_loses_one_point_for_the_bias_named(assignment):
    """Seed 004's Part 1 as submitted: matplotlib and pprint imported, lowercase 'w1'/'w2' keys in
    its weights (so its own In [7] raises KeyError in the kernel, which costs nothing: the
    grader calls the functions itself), b2 added inside the dot product. Everything else it
    wrote is right: 9/10, the one point taken in the forward check, with the mistake named."""
    result = _grade(SEED_NOTEBOOK, assignment)
    checks_ = _by_id(result)
    assert {k: c.points for k, c in checks_.items()} == \
        {"forward": 1, "backward": 5, "gradient-check": 2, "numpy-only": 1}
    assert result.score == 9
    assert "b2 is added inside the dot product, Z2 = H·(W2 + b2)" in checks_["forward"].message
    assert "Y and Z2 earn nothing, H and Z1 are right" in checks_["forward"].message
    assert "charged once, in the forward check" in checks_["backward"].message
    assert "transposed" in checks_["backward"].message  # its (2, 3) dL/dW1, as it printed it
    assert [(e.ename, e.evalue) for e in result.cell_errors] == \
        [("KeyError", "'W1'"), ("NameError", "name 'gradients' is not defined")]


@pytest.mark.slow
def test_a_clean_room_that_cannot_start_is_the_graders_error_not_a_zero(monkeypatch, assignment):
    def broken_wrap(command, mounts, cwd, **options):
        return ["sh", "-c", "echo 'bwrap: Can not mount tmpfs on /newroot/x' >&2; exit 1"]
    monkeypatch.setattr(numpy_run.sandbox_mod, "wrap", broken_wrap)
    with pytest.raises(GraderError, match="clean room did not start \\(bwrap: Can not mount"):
        measure(notebook_of(_reference_functions()), assignment, sandbox="bwrap")
    monkeypatch.setattr(numpy_run, "measure", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("disk full")))
    result = pipeline.grade(assignment.reference, assignment, pipeline.Options(sandbox="none"))
    assert result.score is None and result.checks == []  # not graded, never a zero
    assert result.execution.status == "grader_error" and "disk full" in result.execution.message
