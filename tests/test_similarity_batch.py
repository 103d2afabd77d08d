"""`grader grade` writes the similarity report of a real class (slow: it runs the notebooks).

The issue's class of 12: eight honest students, each with their own code (tests/similarity_class
.py's runnable styles) for the reference's design, trained their own way; ann hands in the
reference (one epoch) and bob the same code with names changed, comments added and two cells
swapped; cat and dan load the same weights file into models their own, different code builds.
The report flags ann and bob for their code, cat and dan for their models' weights and
predictions (measured by the grader), and nobody else; nothing of it reaches a student's
result.json, report or feedback. And a class of 6 who all handed in the starter completed with
the reference's cells, seeded as a homework would (`keras.utils.set_random_seed(42)`), half of
them without the plots: identical weights, which their identical training code explains, so
nothing is flagged.
"""

from __future__ import annotations

import csv
import itertools
import json
import shutil
import time

import nbformat
import numpy as np
import pytest

import notebook_factory as nf
from similarity_class import RUN_STAGES, honest_cells
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


def shared_weights(subs, seed):
    """cat and dan load one weights file into models their different code builds."""
    rng = np.random.default_rng(seed)
    shapes = [(784, 128), (128,), (128, 64), (64,), (64, 10), (10,)]
    weights = {f"w{i}": rng.normal(0, 0.1, s).astype("float32") for i, s in enumerate(shapes)}
    for student, source in (("cat", CAT), ("dan", DAN)):
        nf.write(code_nb(source), subs / student / "homework.ipynb")
        np.savez(subs / student / "weights.npz", **weights)


def loading_cell() -> str:
    """The starter's own code: it loads the data (the rest of its cells are left to students)."""
    return next(c.source for c in starter().cells if c.cell_type == "code")


def class_of_12(subs) -> None:
    rows = [(x, y) for x in range(5) for y in range(5)][:8]
    for i, row in enumerate(rows):
        nf.write(code_nb(loading_cell(), *honest_cells(*row, RUN_STAGES)),
                 subs / f"honest{i}.ipynb")
    ann = one_epoch(nf.reference())
    nf.write(ann, subs / "ann.ipynb")
    nf.write(disguised(ann), subs / "bob.ipynb")
    shared_weights(subs, seed=0)


def grade_class(subs, out, data_dir, *more: str):
    tmp = short_tmp()
    try:
        started = time.monotonic()
        proc = grade_cli([subs, "-a", ASSIGNMENT, "--out", out, "--data-dir", data_dir,
                          "--timeout", "300", *more], tmp, timeout=1800)
        seconds = time.monotonic() - started
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with (out / "similarity.csv").open() as fh:
        rows = {(r["student_a"], r["student_b"]): r for r in csv.DictReader(fh)}
    print(f"graded {len(list(out.glob('*/result.json')))} notebooks in {seconds:.0f} s; flagged",
          {k: (r["evidence"], r["code_similarity"], r["weights_distance"],
               r["prediction_agreement"]) for k, r in rows.items()})
    return proc, rows


@pytest.mark.slow
def test_a_class_of_12_flags_exactly_the_copies_each_for_its_reason(tmp_path, data_dir):
    subs, out = tmp_path / "subs", tmp_path / "grades"
    class_of_12(subs)
    proc, rows = grade_class(subs, out, data_dir, "-j", "2")
    assert "similar submissions: 2 pair(s) flagged" in proc.stdout
    assert set(rows) == {("ann", "bob"), ("cat", "dan")}
    # bob's renamed copy trains as ann's does under the grader's seed: the same weights, which
    # the same code explains, so the pair is flagged for its code and the sentence says so
    assert rows[("ann", "bob")]["evidence"] == "code"
    assert "weights and holdout predictions are the same" in rows[("ann", "bob")]["explanation"]
    assert rows[("cat", "dan")]["evidence"] == "weights;predictions"
    assert float(rows[("cat", "dan")]["weights_distance"]) == 0.0
    html = (out / "similarity.html").read_text()
    assert "ann and bob" in html and "cat and dan" in html and "<mark>" in html
    digests = set()
    for result in out.glob("*/result.json"):
        student = result.parent.name
        assert json.loads(result.read_text())["models"]["model"]["status"] == "found", student
        evidence = json.loads((out / student / "similarity.json").read_text())
        digest = evidence["models"]["model"]["weights"]["digest"]
        labels = evidence["models"]["model"]["labels"]
        assert len(digest) == 64 and labels
        digests.add(digest)
        result_text = result.read_text()
        assert "evidence" not in json.loads(result_text)
        feedback = out / student / "feedback"
        assert not list(feedback.glob("similarity*"))
        for text in (result_text, (out / student / "report.html").read_text(),
                     (feedback / "report.html").read_text()):
            assert digest not in text and labels[:40] not in text
            assert "flagged" not in text and "fingerprint" not in text
    assert len(digests) == 10  # the honest trained their own weights; ann=bob, cat=dan
    print("closest unflagged pair: weights %.3f apart, %.3f of the holdout labels agree"
          % closest_unflagged(out, set(rows)))


def closest_unflagged(out, flagged) -> tuple[float, float]:
    """The smallest weights distance and the highest prediction agreement of the pairs the
    report did not flag: how far the honest sit from the thresholds."""
    from grader.similarity import models
    from grader.measure.fingerprint import labels_of

    measured = {p.parent.name: json.loads(p.read_text())["models"]["model"]
                for p in sorted(out.glob("*/similarity.json"))}
    distances, agreements = [], []
    for a, b in itertools.combinations(sorted(measured), 2):
        if (a, b) not in flagged:
            distances.append(models.weights_distance(measured[a]["weights"],
                                                     measured[b]["weights"]))
            agreements.append(models.agreement(labels_of(measured[a]["labels"]),
                                               labels_of(measured[b]["labels"])))
    return min(distances), max(agreements)


def homework_seeded(nb):
    """The reference's model cell seeded as a homework's starter would have it."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "keras.Sequential(" in cell.source:
            cell.source = cell.source.replace("\nmodel = ", "\nkeras.utils.set_random_seed(42)"
                                              "\nmodel = ", 1)
            assert "set_random_seed(42)" in cell.source
    return nb


def without_plots(nb):
    nb.cells = [c for c in nb.cells if not (c.cell_type == "code" and "plt." in c.source)]
    return nb


@pytest.mark.slow
def test_a_class_that_all_handed_in_the_reference_flags_nothing(tmp_path, data_dir):
    """Six students (the fewest the rare-design rule looks at), each the starter completed with
    the reference's cells, the homework's seed set; half leave out the plots, so their whole
    notebooks differ. Their weights are identical, as the same data preparation, model and
    training cells give: no evidence."""
    subs, out = tmp_path / "subs", tmp_path / "grades"
    for i in range(6):
        nb = homework_seeded(one_epoch(nf.reference()))
        nf.write(without_plots(nb) if i % 2 else nb, subs / f"s{i:02d}.ipynb")
    proc, rows = grade_class(subs, out, data_dir, "-j", "2")
    assert "similar submissions: 0 pair(s) flagged" in proc.stdout
    assert rows == {}
    digests = {json.loads((out / f"s{i:02d}" / "similarity.json").read_text())["models"]
               ["model"]["weights"]["digest"] for i in range(6)}
    assert len(digests) == 1  # the same weights: flagging them would be a false positive


@pytest.mark.slow
def test_on_dask_the_report_is_the_local_pools(tmp_path, data_dir):
    """The trusted side's evidence comes back with each Dask task's result: the same pairs as
    grading locally would flag (cat and dan's weights and predictions)."""
    pytest.importorskip("distributed")
    from test_dask import Cluster

    subs, out = tmp_path / "subs", tmp_path / "grades"
    shared_weights(subs, seed=1)
    nf.write(starter(), subs / "eve.ipynb")
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
