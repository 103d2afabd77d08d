"""`grader grade` writes the similarity report of a real class (slow: it runs the notebooks).

ann hands in the reference (one epoch); bob the same code with names changed, comments added and
two cells swapped; cat and dan load the same weights file into models their own code builds;
eve the starter. The report flags ann and bob for their code, cat and dan for their models'
weights and predictions (measured by the grader), and nobody else; nothing of it reaches a
student's result.json, report or feedback.
"""

from __future__ import annotations

import csv
import json
import shutil
import time

import nbformat
import numpy as np
import pytest

import notebook_factory as nf
from test_batch import ASSIGNMENT, code_nb, grade_cli, one_epoch, short_tmp, starter

RENAMES = {"xdev": "dev_images", "xtest": "test_images", "X_train": "train_x",
           "y_train": "train_y", "X_val": "val_x", "y_val": "val_y", "history": "hist",
           "order": "perm", "cut": "split_at"}

CAT = """import numpy as np
from tensorflow import keras
weights = np.load('weights.npz')
model = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(128, activation='relu'),
                          keras.layers.Dense(64, activation='relu'),
                          keras.layers.Dense(10, activation='softmax')])
model.set_weights([weights[f'w{i}'] for i in range(6)])
model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])
"""
DAN = """import numpy
import tensorflow as tf

def dense_stack(sizes, final):
    inp = tf.keras.layers.Input((784,))
    out = inp
    for units in sizes:
        out = tf.keras.layers.Dense(units, activation=tf.nn.relu, name=f'hidden_{units}')(out)
    return tf.keras.Model(inp, tf.keras.layers.Dense(final, activation='softmax',
                                                     name='probabilities')(out))

model = dense_stack((128, 64), 10)
with numpy.load('weights.npz') as saved:
    model.set_weights([saved['w%d' % k] for k in range(len(saved.files))])
model.compile(loss=tf.keras.losses.CategoricalCrossentropy(), optimizer=tf.keras.optimizers.Adam())
"""


def disguised(nb):
    """The same notebook as a copier hands it in: names changed, comments added, cells 2 and 3
    (a plot and a print, independent of each other) swapped, spacing changed."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in nb.cells:
        if cell.cell_type == "code":
            for old, new in RENAMES.items():
                cell.source = cell.source.replace(old, new)
            cell.source = "# my work\n" + cell.source.replace(", ", ",  ")
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    nb.cells[code[1]], nb.cells[code[2]] = nb.cells[code[2]], nb.cells[code[1]]
    return nb


@pytest.mark.slow
def shared_weights_and_starter(subs, seed):
    """cat and dan load one weights file into models their different code builds; eve hands in
    the starter."""
    rng = np.random.default_rng(seed)
    shapes = [(784, 128), (128,), (128, 64), (64,), (64, 10), (10,)]
    weights = {f"w{i}": rng.normal(0, 0.1, s).astype("float32") for i, s in enumerate(shapes)}
    for student, source in (("cat", CAT), ("dan", DAN)):
        nf.write(code_nb(source), subs / student / "homework.ipynb")
        np.savez(subs / student / "weights.npz", **weights)
    nf.write(starter(), subs / "eve.ipynb")


def test_grade_writes_the_similarity_report(tmp_path, data_dir):
    subs, out = tmp_path / "subs", tmp_path / "grades"
    ann = one_epoch(nf.reference())
    nf.write(ann, subs / "ann.ipynb")
    nf.write(disguised(ann), subs / "bob.ipynb")
    shared_weights_and_starter(subs, seed=0)
    tmp = short_tmp()
    try:
        started = time.monotonic()
        proc = grade_cli([subs, "-a", ASSIGNMENT, "--out", out, "--data-dir", data_dir,
                          "--timeout", "120", "-j", "1"], tmp)
        print(f"graded the class of 5 in {time.monotonic() - started:.0f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "similar submissions: " in proc.stdout and "pair(s) flagged" in proc.stdout
    with (out / "similarity.csv").open() as fh:
        rows = {(r["student_a"], r["student_b"]): r for r in csv.DictReader(fh)}
    print({k: (r["evidence"], r["code_similarity"], r["weights_distance"],
               r["prediction_agreement"]) for k, r in rows.items()})
    assert set(rows) == {("ann", "bob"), ("cat", "dan")}
    # bob's renamed copy trains as ann's does under the grader's seed: the same weights, which
    # the same code explains, so the pair is flagged for its code and the sentence says so
    assert rows[("ann", "bob")]["evidence"] == "code"
    assert "weights and holdout predictions are the same" in rows[("ann", "bob")]["explanation"]
    assert rows[("cat", "dan")]["evidence"] == "weights;predictions"
    assert float(rows[("cat", "dan")]["weights_distance"]) == 0.0
    html = (out / "similarity.html").read_text()
    assert "ann and bob" in html and "cat and dan" in html and "<mark>" in html
    for student in ("ann", "bob", "cat", "dan"):
        evidence = json.loads((out / student / "similarity.json").read_text())
        digest = evidence["models"]["model"]["weights"]["digest"]
        labels = evidence["models"]["model"]["labels"]
        assert len(digest) == 64 and labels
        result_text = (out / student / "result.json").read_text()
        assert "evidence" not in json.loads(result_text)
        feedback = out / student / "feedback"
        assert not list(feedback.glob("similarity*"))
        for text in (result_text, (out / student / "report.html").read_text(),
                     (feedback / "report.html").read_text()):
            assert digest not in text and labels[:40] not in text
            assert "flagged" not in text and "fingerprint" not in text


@pytest.mark.slow
def test_on_dask_the_report_is_the_local_pools(tmp_path, data_dir):
    """The trusted side's evidence comes back with each Dask task's result: the same pairs as
    grading locally would flag (cat and dan's weights and predictions)."""
    pytest.importorskip("distributed")
    from test_dask import Cluster

    subs, out = tmp_path / "subs", tmp_path / "grades"
    shared_weights_and_starter(subs, seed=1)
    tmp = short_tmp()
    cluster = Cluster(tmp)
    try:
        cluster.wait_for_workers()
        proc = grade_cli([subs, "-a", ASSIGNMENT, "--out", out, "--data-dir", data_dir,
                          "--scheduler", cluster.address], tmp, timeout=900)
    finally:
        cluster.close()
        shutil.rmtree(tmp, ignore_errors=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "on the Dask cluster at" in proc.stdout
    assert "similar submissions: 1 pair(s) flagged" in proc.stdout
    with (out / "similarity.csv").open() as fh:
        rows = [(r["student_a"], r["student_b"], r["evidence"]) for r in csv.DictReader(fh)]
    assert rows == [("cat", "dan", "weights;predictions")]
    for student in ("cat", "dan"):
        assert "evidence" not in json.loads((out / student / "result.json").read_text())
        assert (out / student / "similarity.json").is_file()
