"""Datasets offline: found where the README says, decoded exactly, split fairly, served to Keras."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from grader import data
from grader.cli import main as cli_main
from grader.data import sources
from grader.scoring import DataMode


@pytest.fixture(scope="module")
def fashion(data_dir):
    return data.load("fashion-mnist", data_dir)


def test_fashion_mnist_decodes_as_sources_md_says(fashion):
    # ../shared/data/SOURCES.md: train (60000, 28, 28) uint8, pixel mean 72.94,
    # first train labels 9 0 0 3 0 2 7 2 5 5; 6,000 images per class.
    x, y = fashion.train
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8
    assert round(float(x.mean()), 2) == 72.94
    assert y[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert np.bincount(y).tolist() == [6000] * 10
    assert fashion.test[0].shape == (10000, 28, 28)
    assert fashion.location.origin == "data-dir"


def test_mnist_decodes_as_sources_md_says(mnist_dir):
    mnist = data.load("mnist", mnist_dir)
    # SOURCES.md: test class counts 980 1135 1032 …; first test labels 7 2 1 0 4 1 4 9 5 9.
    assert np.bincount(mnist.test[1]).tolist()[:3] == [980, 1135, 1032]
    assert mnist.test[1][:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert mnist.train[1][:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


@pytest.mark.skipif(not (sources.DEBIAN_DIR / "fashion-mnist").is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_debian_package_gives_identical_pixels(fashion, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # an empty Keras cache
    debian = data.load("fashion-mnist")
    assert debian.location.origin == "debian"
    assert np.array_equal(debian.train[0], fashion.train[0])
    assert np.array_equal(debian.test[1], fashion.test[1])


def test_keras_cache_mnist_npz_is_found(mnist_dir, tmp_path, monkeypatch):
    mnist = data.load("mnist", mnist_dir)
    (tmp_path / "datasets").mkdir()
    np.savez(tmp_path / "datasets" / "mnist.npz", x_train=mnist.train[0], y_train=mnist.train[1],
             x_test=mnist.test[0], y_test=mnist.test[1])
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    location = data.locate("mnist")
    assert location.layout == "npz" and location.origin == "keras-cache"
    assert np.array_equal(data.load("mnist").test[0], mnist.test[0])


def test_missing_dataset_says_how_to_provide_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv("GRADER_OFFLINE", "1")
    monkeypatch.setattr(sources, "DEBIAN_DIR", tmp_path / "none")
    with pytest.raises(data.DatasetError, match="--data-dir"):
        data.load("mnist", tmp_path)
    assert cli_main(["data", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "mnist: not found" in out and "apt-get install dataset-fashion-mnist" in out


def test_subset_is_stratified_fixed_and_disjoint_from_the_holdout(fashion):
    args = dict(seed=2026, train_per_class=600, test_per_class=100, holdout_per_class=200)
    a, b = data.make_split(fashion, **args), data.make_split(fashion, **args)
    assert np.bincount(a.train[1]).tolist() == [600] * 10
    assert np.bincount(a.test[1]).tolist() == [100] * 10
    assert np.bincount(a.holdout[1]).tolist() == [200] * 10
    assert np.array_equal(a.train[0], b.train[0]) and np.array_equal(a.holdout[0], b.holdout[0])
    other = data.make_split(fashion, **{**args, "seed": 1})
    assert not np.array_equal(other.train[0], a.train[0])
    # No holdout image reaches the notebook (compare pixels, duplicates in the data aside).
    train_rows = {img.tobytes() for img in a.train[0]}
    overlap = sum(img.tobytes() in train_rows for img in a.holdout[0])
    assert overlap <= 2


def test_full_mode_gives_everything_but_the_holdout(fashion):
    args = dict(seed=2026, train_per_class=600, test_per_class=100, holdout_per_class=200)
    full = data.make_split(fashion, mode=DataMode.FULL, **args)
    subset = data.make_split(fashion, **args)
    assert len(full.train[1]) == 58000 and len(full.test[1]) == 10000
    assert np.array_equal(full.holdout[0], subset.holdout[0])
    # The grader's own training uses the subset's images in both modes.
    for split in (full, subset):
        assert np.array_equal(split.graders_training[0], subset.train[0])
        assert np.array_equal(split.graders_training[1], subset.train[1])


def test_the_graders_training_file_is_the_subset_in_full_mode(fashion, tmp_path, monkeypatch):
    """Its bars were calibrated on the subset: with --full the notebook gets the whole split,
    the grader's training still the subset's images, with the same budget."""
    from grader import assignment as spec, pipeline

    monkeypatch.setattr(data, "load", lambda name, data_dir=None: fashion)
    assignment = spec.load("fashion-mlp")
    prepared = {}
    for mode in DataMode:
        (tmp_path / mode).mkdir()
        prepared[mode] = pipeline.prepare_data(assignment, pipeline.Options(mode=mode),
                                               tmp_path / mode)
    budgets = {mode: pipeline.training_budget(assignment, prepared[mode], 0) for mode in DataMode}
    assert budgets[DataMode.SUBSET]["train_npz"] == prepared[DataMode.SUBSET].student_npz[
        "fashion-mnist"]
    with np.load(budgets[DataMode.FULL]["train_npz"], allow_pickle=False) as graders, \
            np.load(budgets[DataMode.SUBSET]["train_npz"], allow_pickle=False) as subset, \
            np.load(prepared[DataMode.FULL].student_npz["fashion-mnist"]) as student:
        assert sorted(graders.files) == ["x_train", "y_train"]
        assert np.array_equal(graders["x_train"], subset["x_train"])
        assert np.array_equal(graders["y_train"], subset["y_train"])
        assert len(student["y_train"]) == 58000
    assert {k: v for k, v in budgets[DataMode.FULL].items() if k != "train_npz"} == \
        {k: v for k, v in budgets[DataMode.SUBSET].items() if k != "train_npz"}
    assert budgets[DataMode.FULL]["max_cpu_seconds"] == assignment.training.max_cpu_seconds


def test_student_file_holds_no_holdout(fashion, tmp_path):
    split = data.make_split(fashion, seed=3, train_per_class=5, test_per_class=2,
                            holdout_per_class=4)
    split.write_student_npz(tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz", allow_pickle=False) as f:
        assert sorted(f.files) == ["x_test", "x_train", "y_test", "y_train"]


@pytest.mark.slow
def test_every_keras_import_path_gets_the_subset_offline(fashion, mnist_dir, tmp_path):
    """keras, tf.keras and keras.src, for Fashion-MNIST and MNIST (which Keras hash-checks)."""
    served = {}
    for name, dataset in (("fashion-mnist", fashion), ("mnist", data.load("mnist", mnist_dir))):
        split = data.make_split(dataset, seed=0, train_per_class=3, test_per_class=1,
                                holdout_per_class=1)
        served[name] = tmp_path / f"{name}.npz"
        split.write_student_npz(served[name])
    script = textwrap.dedent(f"""
        from pathlib import Path
        from grader.kernel import datasets as kernel_hook
        kernel_hook.install({{"fashion-mnist": Path({str(served['fashion-mnist'])!r}),
                              "mnist": Path({str(served['mnist'])!r})}})
        from tensorflow.keras.datasets import fashion_mnist
        import tensorflow as tf, keras
        from keras.src.datasets import mnist as src_mnist
        sizes = [fashion_mnist.load_data()[0][0].shape[0],
                 tf.keras.datasets.fashion_mnist.load_data()[0][0].shape[0],
                 keras.datasets.mnist.load_data(path="mnist.npz")[0][0].shape[0],
                 tf.keras.datasets.mnist.load_data()[1][0].shape[0],
                 src_mnist.load_data()[0][1].shape[0]]
        print("SIZES", sizes)
    """)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, timeout=300)
    assert "SIZES [30, 30, 30, 10, 30]" in out.stdout, out.stderr[-2000:]


def test_holdout_secret_changes_the_holdout_not_the_subset(fashion):
    """With the instructor's secret, the holdout cannot be recomputed from the public seed; what
    the notebook gets stays exactly the same, and the holdout stays outside it."""
    args = dict(seed=2026, train_per_class=60, test_per_class=10, holdout_per_class=20)
    public = data.make_split(fashion, **args)
    secret = data.make_split(fashion, holdout_secret="course-2026", **args)
    again = data.make_split(fashion, holdout_secret="course-2026", **args)
    other = data.make_split(fashion, holdout_secret="another", **args)
    for a, b in ((public.train, secret.train), (public.test, secret.test)):
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert np.array_equal(secret.holdout[0], again.holdout[0])
    assert not np.array_equal(secret.holdout[0], public.holdout[0])
    assert not np.array_equal(secret.holdout[0], other.holdout[0])
    assert np.bincount(secret.holdout[1]).tolist() == [20] * 10
    train = {x.tobytes() for x in secret.train[0]}
    assert not any(x.tobytes() in train for x in secret.holdout[0])


@pytest.fixture
def original_fashion(data_dir) -> Path:
    """The four files as Zalando published them (Debian's copies differ in their gzip header)."""
    folder = Path(data_dir, "fashion-mnist").resolve()
    stem = "t10k-labels-idx1-ubyte"
    if hashlib.sha256((folder / f"{stem}.gz").read_bytes()).hexdigest() != \
            sources.FASHION_SHA256[stem]:
        pytest.skip(f"{folder} holds a repacked Fashion-MNIST, not the published files")
    return folder


def _served_from(folder: Path, monkeypatch, tmp_path) -> Path:
    """Keras's download address pointed at a local folder (urlopen reads file: URLs), an empty
    Keras cache, no Debian package: `grader data --fetch` has to download."""
    monkeypatch.setattr(sources, "KERAS_URL", folder.as_uri() + "/")
    monkeypatch.setattr(sources, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return tmp_path / "keras" / "datasets" / "fashion-mnist"


def test_fetch_downloads_fashion_mnist_and_checks_every_file(original_fashion, tmp_path,
                                                             monkeypatch, capsys):
    target = _served_from(original_fashion, monkeypatch, tmp_path)
    assert cli_main(["data", "--fetch", "fashion-mnist"]) == 0
    assert f"fashion-mnist: {target} (download)" in capsys.readouterr().out
    assert data.locate("fashion-mnist").origin == "keras-cache"
    assert round(float(data.load("fashion-mnist").test[0].mean()), 2) == 73.15


def test_fetch_refuses_a_file_that_is_not_the_published_one(original_fashion, tmp_path,
                                                            monkeypatch):
    served = tmp_path / "served"
    shutil.copytree(original_fashion, served)
    with open(served / "t10k-labels-idx1-ubyte.gz", "ab") as fh:
        fh.write(b"\0")  # one byte more: still a gzip file, no longer the published one
    target = _served_from(served, monkeypatch, tmp_path)
    with pytest.raises(data.DatasetError, match="checksum mismatch"):
        data.fetch("fashion-mnist")
    assert cli_main(["data", "--fetch"]) == 3  # the grader's set-up, not a usage error
    assert not (target / "t10k-labels-idx1-ubyte.gz").exists()
    assert not list(target.glob("*.part"))


def test_the_data_dir_option_defaults_to_the_environment_variable(data_dir, monkeypatch, capsys):
    monkeypatch.setenv("GRADER_DATA_DIR", str(data_dir))
    assert cli_main(["data"]) == 0
    assert f"fashion-mnist: {Path(data_dir, 'fashion-mnist')}" in capsys.readouterr().out
