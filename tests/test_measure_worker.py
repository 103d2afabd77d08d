"""The trusted measuring process on its own: what it loads into memory and what it predicts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grader import measure
from grader.measure.worker import OPTIONAL_IMPORTS

# Each optional package ships compiled extensions under a folder of its name: a process that
# imported it has them mapped.
PACKAGE_FOLDERS = {"sklearn": "/sklearn/", "scipy": "/scipy/", "pandas": "/pandas/",
                   "matplotlib": "/matplotlib/"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path, np.ndarray]:
    """A small compiled model saved as the kernel saves one, images, and its own predictions."""
    import keras

    folder = tmp_path_factory.mktemp("export")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    archive = folder / "model.keras"
    model.save(archive)
    images = np.random.default_rng(0).integers(0, 256, (40, 28, 28), dtype="uint8")
    np.save(folder / "images.npy", images, allow_pickle=False)
    expected = model.predict(images.reshape((40, 784)).astype("float32") / 255.0, verbose=0)
    return archive, folder / "images.npy", expected


@pytest.mark.slow
def test_the_measuring_process_leaves_out_what_it_never_uses(tmp_path, exported):
    """scikit-learn, SciPy, pandas and matplotlib are installed for the notebooks; the trusted
    process measures without them (1.5 CPU seconds of its start-up) and predicts as Keras does."""
    archive, images, expected = exported
    worker = measure.Worker(tmp_path / "measure", [archive.parent], 4096, mounts=None)
    try:
        found = worker.measure(measure.Request(images=images, objects=[
            {"name": "model", "export": str(archive), "input_shape": None}]), rows=40)
        maps = _maps_of_tree(worker.proc.pid)  # still running: its input is open
    finally:
        worker.close()
    model = found.objects["model"]
    assert model.status == "found", model.message
    assert model.model["total_params"] == 784 * 16 + 16 + 16 * 10 + 10
    np.testing.assert_allclose(model.predictions["unit"], expected, rtol=1e-4, atol=1e-6)
    loaded = [name for name, folder in PACKAGE_FOLDERS.items() if folder in maps]
    assert loaded == [], f"the measuring process loaded {loaded}"
    assert "tensorflow" in maps  # it did load what it measures with
    assert "/torch/" not in maps  # loaded only to retrain a PyTorch answer
    assert set(PACKAGE_FOLDERS) <= set(OPTIONAL_IMPORTS)


def _maps_of_tree(pid: int) -> str:
    """The memory maps of a process and its descendants (the confinement's launcher starts the
    measuring process as its child)."""
    maps, todo = [], [pid]
    while todo:
        current = todo.pop()
        maps.append(Path(f"/proc/{current}/maps").read_text())
        for task in Path(f"/proc/{current}/task").iterdir():
            todo.extend(int(c) for c in (task / "children").read_text().split())
    return "\n".join(maps)


def test_the_packages_it_leaves_out_are_there_for_the_notebooks():
    """Otherwise the test above would pass for the wrong reason."""
    import importlib.util

    missing = [name for name in PACKAGE_FOLDERS if importlib.util.find_spec(name) is None]
    assert missing == [], f"not installed here: {missing}"


def _small_cnn():  # noqa: ANN202 - a Keras model
    import keras

    keras.utils.set_random_seed(1)
    return keras.Sequential([
        keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.MaxPooling2D(), keras.layers.Flatten(), keras.layers.Dense(16),
        keras.layers.BatchNormalization(), keras.layers.Activation("relu"),
        keras.layers.Dense(10, activation="softmax")])


def test_one_call_predicts_each_scaling_as_a_call_of_its_own(tmp_path):
    """The three scalings go through one pass; 257 images are not whole batches, so a batch
    holds the end of one scaling and the start of the next: each image's numbers are still its
    own, to float rounding."""
    from grader.data.model_inputs import SCALINGS
    from grader.measure.worker import _predict_keras

    model = _small_cnn()
    images = np.random.default_rng(2).integers(0, 256, (257, 28, 28), dtype="uint8")
    entry = _predict_keras(model, images, (28, 28, 1), tmp_path / "p.npz")
    assert entry == {"predictions": "p.npz", "predict_errors": {}}
    with np.load(tmp_path / "p.npz") as saved:
        assert sorted(saved.files) == sorted(SCALINGS)
        for scaling, transform in SCALINGS.items():
            alone = model.predict(transform(images).reshape((257, 28, 28, 1)), batch_size=256,
                                  verbose=0)
            np.testing.assert_allclose(saved[scaling], alone, rtol=1e-5, atol=1e-7)


def test_predicting_batch_by_batch_is_predict_to_the_bit():
    """The measuring process skips predict()'s tf.data pipeline; what it computes must not move
    by a bit, or every calibrated bar and expected figure would: a CNN with dropout and batch
    normalisation, a compiled one, and a last batch that is not whole."""
    import keras

    from grader.measure.worker import BATCH_ROWS, in_batches

    keras.utils.set_random_seed(3)
    cnn = keras.Sequential([
        keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.MaxPooling2D(), keras.layers.Dropout(0.3), keras.layers.Flatten(),
        keras.layers.Dense(16), keras.layers.BatchNormalization(),
        keras.layers.Activation("relu"), keras.layers.Dense(10, activation="softmax")])
    images = np.random.default_rng(4).random((2 * BATCH_ROWS + 37, 28, 28, 1), dtype="float32")
    for model in (cnn, _small_cnn()):
        for compiled in (False, True):
            if compiled:
                model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
            expected = model.predict(images, batch_size=BATCH_ROWS, verbose=0)
            np.testing.assert_array_equal(in_batches(model.predict_on_batch, images), expected)


def test_a_model_that_cannot_predict_is_reported_per_scaling(tmp_path):
    from grader.measure.worker import _predict_keras

    images = np.zeros((5, 28, 28), dtype="uint8")
    entry = _predict_keras(_small_cnn(), images, (784,), tmp_path / "p.npz")
    assert entry["predictions"] is None and not (tmp_path / "p.npz").exists()
    assert sorted(entry["predict_errors"]) == ["raw", "standardized", "unit"]
