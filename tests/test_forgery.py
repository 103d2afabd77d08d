"""Forgeries a determined student tries from inside the kernel: each earns nothing it did not do,
because every Keras number is measured by the trusted process on the exported model.
Run with `pytest -m hostile`."""

from __future__ import annotations

import json

import nbformat
import pytest

from grader import pipeline, spec
from grader.paths import REFERENCE_DIR

pytestmark = [pytest.mark.hostile, pytest.mark.slow]

ASSIGNMENT = "fashion-mlp"
# A model that was never trained and is not the homework's architecture.
UNTRAINED = ("import numpy as np\nimport tensorflow as tf\nfrom tensorflow import keras\n"
             "model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, "
             "activation='sigmoid')])\nmodel.compile('adam', 'categorical_crossentropy', "
             "metrics=['accuracy'])")
REFERENCE_LAYERS = json.loads((REFERENCE_DIR / ASSIGNMENT / "expected.json").read_text()
                              )["objects"]["model"]["variants"][0]

FORGERIES = {
    # Otter's and nbgrader's hole: evaluate() reports perfect accuracy.
    "patched-evaluate": [UNTRAINED, "tf.keras.Model.evaluate = lambda self, *a, **k: [0.0, 1.0]"],
    # The grader's own introspection, to_json and predict replaced before the harvest runs.
    "patched-introspection": [UNTRAINED, (
        "import grader.measure.introspect as ki\n"
        f"REF = {json.dumps(REFERENCE_LAYERS)!r}\n"
        "import json\n"
        "ki.describe_model = lambda m, s: dict(json.loads(REF), kind='Sequential', built=True, "
        "unused_layers=[], weights_params=109386, trace_error=None, "
        "compile={'compiled': True, 'loss': 'categorical_crossentropy', 'optimizer': 'Adam', "
        "'learning_rate': 0.001, 'train_steps': 750})\n"
        "model.to_json = lambda: keras.Sequential([keras.Input((784,)), keras.layers.Dense(128, "
        "activation='relu'), keras.layers.Dense(64, activation='relu'), keras.layers.Dense(10, "
        "activation='softmax')]).to_json()\n"
        "model.predict = lambda x, **k: np.eye(10)[np.zeros(len(x), int)]")],
    # predict() as 5-nearest-neighbours over the training subset: a good classifier, but not
    # the model.
    "knn-predict": [UNTRAINED, (
        "(xt, yt), _ = tf.keras.datasets.fashion_mnist.load_data()\n"
        "xt = xt.reshape(len(xt), -1).astype('float32') / 255\n"
        "def knn(x, **k):\n"
        "    x = np.asarray(x, 'float32').reshape(len(x), -1)\n"
        "    x = x / 255 if x.max() > 1.5 else x\n"
        "    d = ((x ** 2).sum(1)[:, None] - 2 * x @ xt.T + (xt ** 2).sum(1)[None])\n"
        "    votes = yt[np.argsort(d, 1)[:, :5]]\n"
        "    return np.eye(10)[[np.bincount(v, minlength=10).argmax() for v in votes]]\n"
        "model.predict = knn")],
    # The harvest replaced by one that writes a perfect description of its own.
    "forged-manifest": [UNTRAINED, (
        "import grader.kernel.harvest as hk, json\n"
        f"REF = json.loads({json.dumps(REFERENCE_LAYERS)!r})\n"
        "hk._harvest_keras = lambda m, obj, images, out, ns=None: {'status': 'found', "
        "'type': 'keras.Sequential', 'input_layout': [784], 'model': dict(REF, kind='subclassed', "
        "unused_layers=[], compile={'compiled': True, 'loss': 'categorical_crossentropy', "
        "'optimizer': 'Adam', 'learning_rate': 0.001, 'train_steps': 750})}")],
}


@pytest.fixture(scope="module")
def forged(tmp_path_factory, data_dir):
    assignment = spec.load(ASSIGNMENT)
    results = {}
    for name, cells in FORGERIES.items():
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
        path = tmp_path_factory.mktemp(name) / f"{name}.ipynb"
        nbformat.write(nb, path)
        results[name] = pipeline.grade(path, assignment, pipeline.Options(data_dir=data_dir))
    return results


def points(result, check_id: str) -> float:
    return next(c.points for c in result.checks if c.id == check_id)


@pytest.fixture(scope="module")
def honest(tmp_path_factory, data_dir):
    """The same untrained model without the forgery: what the forgeries really did."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(UNTRAINED)])
    path = tmp_path_factory.mktemp("honest") / "honest.ipynb"
    nbformat.write(nb, path)
    return pipeline.grade(path, spec.load(ASSIGNMENT), pipeline.Options(data_dir=data_dir))


@pytest.mark.parametrize("name", ["patched-evaluate", "patched-introspection", "knn-predict"])
def test_forgery_earns_exactly_what_the_model_it_built_earns(forged, honest, name):
    result = forged[name]
    assert not result.cell_errors, result.cell_errors
    assert {c.id: c.points for c in result.checks} == {c.id: c.points for c in honest.checks}
    assert points(result, "model-accuracy") == 0, [c.message for c in result.checks]
    assert points(result, "model-activations") == points(result, "model-params") == 0


def test_measured_model_is_the_one_built(forged):
    """The trusted side reports the model the notebook really built: one sigmoid Dense layer."""
    model = forged["patched-introspection"].models["model"]
    assert [layer["class"] for layer in model["layers"]] == ["Dense"]
    assert model["layers"][0]["activation"] == "sigmoid"
    assert model["total_params"] == 7850
    assert model["compile"]["train_steps"] == 0


def test_forged_manifest_earns_nothing_and_says_why(forged):
    result = forged["forged-manifest"]
    assert result.score == 0, result.checks
    message = result.models["model"]["message"]
    assert "subclassed" in message and "Sequential" in message
