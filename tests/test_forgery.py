"""Forgeries a determined student tries from inside the kernel: each earns nothing it did not do,
because every Keras number is measured by the trusted process on the exported model.
Run with `pytest -m hostile`."""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pytest

from grader import data, holdout, pipeline, spec
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
        "hk._harvest_keras = lambda m, obj, out: {'status': 'found', "
        "'type': 'keras.Sequential', 'input_layout': [784], 'model': dict(REF, kind='subclassed', "
        "unused_layers=[], compile={'compiled': True, 'loss': 'categorical_crossentropy', "
        "'optimizer': 'Adam', 'learning_rate': 0.001, 'train_steps': 750})}")],
    # A 21.4M-parameter model that says it is small: to_json and count_params patched.
    "oversized-claims-small": [(
        "import numpy as np\nfrom tensorflow import keras\n"
        "model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(27000), "
        "keras.layers.Dense(10, activation='softmax')])\n"
        "model.compile('adam', 'categorical_crossentropy')\n"
        "small = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10)])\n"
        "model.to_json = small.to_json\nmodel.count_params = small.count_params")],
}


def lookup_notebook(images: np.ndarray, labels: np.ndarray) -> list[str]:
    """A subclassed model that answers by looking each image up in a table of the public-seed
    holdout (recomputed from the public files and assignment.toml's seed): exact pixels → label."""
    weights = np.random.default_rng(1).integers(1, 2**20, 784)
    keys = (images.reshape(len(images), -1).astype("int64") * weights).sum(axis=1)
    return [(
        "import numpy as np\nimport tensorflow as tf\nfrom tensorflow import keras\n"
        f"KEYS = np.array({keys.tolist()}, dtype='int64')\n"
        f"LABELS = np.array({labels.tolist()}, dtype='int64')\n"
        f"WEIGHTS = np.array({weights.tolist()}, dtype='int64')\n"
        "class Lookup(keras.Model):\n"
        "    def call(self, x, training=False):\n"
        "        pixels = tf.cast(tf.round(tf.reshape(x, (-1, 784)) * 255.0), tf.int64)\n"
        "        key = tf.reduce_sum(pixels * WEIGHTS, axis=1)\n"
        "        hit = tf.cast(tf.equal(key[:, None], KEYS[None, :]), tf.int64)\n"
        "        return tf.one_hot(tf.gather(LABELS, tf.argmax(hit, axis=1)), 10)\n"
        "model = Lookup()\nmodel(np.zeros((2, 784), 'float32'))\n"
        "model.compile('adam', 'categorical_crossentropy')")]


def public_seed_holdout(data_dir) -> tuple[np.ndarray, np.ndarray]:
    """What a student can rebuild offline: the holdout drawn with assignment.toml's own seed."""
    assignment = spec.load(ASSIGNMENT)
    d = assignment.data
    split = data.make_split(data.load(d.dataset, data_dir), seed=d.seed,
                            train_per_class=d.train_per_class, test_per_class=d.test_per_class,
                            holdout_per_class=d.holdout_per_class)
    return split.holdout


@pytest.fixture(scope="module")
def forged(tmp_path_factory, data_dir):
    assignment = spec.load(ASSIGNMENT)

    def grade(name, cells):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
        path = tmp_path_factory.mktemp(name) / f"{name}.ipynb"
        nbformat.write(nb, path)
        return pipeline.grade(path, assignment, pipeline.Options(data_dir=data_dir))

    results = {name: grade(name, cells) for name, cells in FORGERIES.items()}
    # The worst case for the lookup: the holdout is the public seed's own draw (as if no secret
    # picked it), so only the perturbation stands between the table and full marks.
    with pytest.MonkeyPatch.context() as patch:
        public = data.make_split
        patch.setattr(data, "make_split", lambda *a, holdout_secret=None, **k: public(*a, **k))
        table = lookup_notebook(*public_seed_holdout(data_dir))
        results["lookup-table"] = grade("lookup-table", table)
        # Without the perturbation the same table would be perfect: what the defence is for.
        patch.setattr(holdout, "perturb", lambda images, secret: images)
        results["lookup-table-unperturbed"] = grade("lookup-table-unperturbed", table)
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
    # The grader's introspection may not even be importable in the kernel; nothing else fails.
    assert all(e["ename"] == "ModuleNotFoundError" for e in result.cell_errors), \
        result.cell_errors
    assert name == "patched-introspection" or not result.cell_errors
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
    assert not result.cell_errors, result.cell_errors
    assert result.score == 0, result.checks
    message = result.models["model"]["message"]
    assert "describes `model` itself instead of exporting it" in message


def test_oversized_model_is_measured_as_it_is_not_as_it_claims(forged):
    """max_params applies to the model the trusted side loaded: no prediction, no training."""
    result = forged["oversized-claims-small"]
    model = result.models["model"]
    assert model["total_params"] == 784 * 27000 + 27000 + 27000 * 10 + 10
    accuracy = next(c for c in result.checks if c.id == "model-accuracy")
    assert accuracy.points == 0 and "the grader measures models up to 20,000,000" in \
        accuracy.message
    timed = next(c for c in result.checks if c.id == "model-timed-training")
    assert timed.points == 0 and "does not retrain models over 20,000,000" in timed.message


def test_a_lookup_table_of_public_images_finds_nothing(forged):
    """A model that looks the public-seed holdout up by its exact pixels: the trusted side shows
    it perturbed images (and another holdout, drawn by the secret), and names what a classifier
    does not need."""
    result = forged["lookup-table"]
    assert not result.cell_errors, result.cell_errors
    model = result.models["model"]
    assert model["source"] == "savedmodel"
    assert {"GatherV2", "OneHot"} <= set(model["unneeded_ops"]), model["unneeded_ops"]
    accuracy = next(c for c in result.checks if c.id == "model-accuracy")
    assert accuracy.points == 0, accuracy.message
    # Nothing for a design it does not have either; only its compile settings are its own.
    earned = {c.id: c.points for c in result.checks if c.points}
    assert set(earned) <= {"model-loss", "model-optimizer"}, earned
    unperturbed = next(c for c in forged["lookup-table-unperturbed"].checks
                       if c.id == "model-accuracy")
    assert unperturbed.details["accuracy"] == 1.0, unperturbed.message


def test_perturbation_moves_every_image_a_little(data_dir):
    images, _ = public_seed_holdout(data_dir)
    shown = holdout.perturb(images, "a secret")
    assert shown.dtype == np.uint8 and shown.shape == images.shape
    changed = [not np.array_equal(a, b) for a, b in zip(images, shown)]
    assert all(changed)
    assert np.abs(shown.astype(int) - images).mean() < 3
    assert np.array_equal(shown, holdout.perturb(images, "a secret"))  # same secret, same images
