"""The class's similarity report (grader/similarity/): code compared with the starter as
boilerplate, models compared from the trusted side's measurements, pairs flagged each for its
reason, and nothing else."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import nbformat
import numpy as np
import pytest

from grader import assignment as spec
from grader.result import GradeResult
from result_factory import result_json
from grader.similarity import Thresholds, code as code_mod, models
from grader.measure import fingerprint
from grader.similarity.build import starter_code, write
from grader.similarity.pairs import Student, analyse

from similarity_class import (REFERENCE_LAYERS, holdout_predictions, honest_cells, notebook,
                              renamed_and_reordered, trained_weights, write_student)

FASHION = spec.load("fashion-mlp")
STARTER = FASHION.starter


def _code(cells: list[str], starter: Path | None = STARTER) -> str:
    return code_mod.code_text(notebook(starter, cells))


# --- code -------------------------------------------------------------------------------------

def test_renamed_reordered_recommented_code_still_matches() -> None:
    original = honest_cells(0, 1)
    copy = renamed_and_reordered(original)
    analysis = analyse([Student("ann", _code(original), None, None),
                        Student("bob", _code(copy), None, None)],
                       starter_code(STARTER), None)
    assert [(p.a, p.b, p.kinds) for p in analysis.pairs] == [("ann", "bob", ["code"])]
    match = analysis.pairs[0].code
    assert match.similarity_a > 0.8 and match.similarity_b > 0.8
    assert match.slices_a and match.slices_b


def test_the_starter_alone_matches_nothing() -> None:
    starter = starter_code(STARTER)
    analysis = analyse([Student(f"s{i}", starter, None, None) for i in range(5)], starter, None)
    assert analysis.pairs == []


def test_independent_styles_are_not_flagged() -> None:
    students = [Student(f"s{x}{y}", _code(honest_cells(x, y)), None, None)
                for x in range(5) for y in range(2)]
    assert analyse(students, starter_code(STARTER), None).pairs == []


def test_code_the_whole_class_shares_is_boilerplate() -> None:
    """What the homework dictates (code every student wrote the same) is no evidence; without
    that rule every pair of this class would be flagged."""
    shared = honest_cells(1, 1)
    students = [Student(f"s{i}", _code([*shared, f"print('mine', {i} * 7)"]), None, None)
                for i in range(10)]
    assert analyse(students, starter_code(STARTER), None).pairs == []
    nothing_common = Thresholds(code_common=1.01)
    assert len(analyse(students, starter_code(STARTER), None, nothing_common).pairs) == 45


# --- weights and predictions ------------------------------------------------------------------

def test_weight_fingerprint_ignores_names_and_order_and_tells_copies() -> None:
    rng = np.random.default_rng(0)
    weights = trained_weights(rng)
    same = fingerprint.of_weights(weights)
    shuffled = fingerprint.of_weights(weights[::-1])
    assert same == shuffled  # order (and names: there are none) do not matter
    nudged = fingerprint.of_weights([w + rng.normal(0, 1e-4, w.shape) for w in weights])
    other = fingerprint.of_weights(trained_weights(np.random.default_rng(1)))
    assert nudged["digest"] != same["digest"]
    assert models.weights_distance(same, nudged) < 0.01
    assert models.weights_distance(same, other) > 0.5
    smaller = fingerprint.of_weights(weights[:4])
    assert models.weights_distance(same, smaller) is None  # another architecture
    assert fingerprint.valid(json.loads(json.dumps(same))) == same
    assert fingerprint.valid({"digest": "x", "tensors": []}) is None


def test_prediction_agreement_of_copies_and_of_independent_trainings() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 2000)
    one = holdout_predictions(rng, labels)
    two = holdout_predictions(rng, labels)
    copy = one.copy()
    copy[:10] = np.roll(copy[:10], 1, axis=1)  # ten images differ
    a, b, c = (fingerprint.labels_of(fingerprint.labels_text(p)) for p in (one, two, copy))
    assert models.agreement(a, c) == pytest.approx(0.995)
    assert models.agreement(a, b) < 0.85  # independent errors: far below the threshold
    assert Thresholds().prediction_agreement > 0.985 - 1e-9


# --- a class of 12 ----------------------------------------------------------------------------

def _class_of_12(out: Path, subs: Path) -> dict[str, Path]:
    """Ten honest students (own code, the reference's design, independent trainings); ann and
    bob share code under renaming and reordering; cat and dan hand in the same trained
    weights (so the same predictions) under different code."""
    rng = np.random.default_rng(26)
    labels = rng.integers(0, 10, 2000)
    rows = [(x, y) for x in range(5) for y in range(5)][:11]
    cells = {f"honest{i:02d}": honest_cells(*rows[i]) for i in range(8)}
    cells["ann"] = honest_cells(*rows[8])
    cells["bob"] = renamed_and_reordered(cells["ann"])
    cells["cat"] = honest_cells(*rows[9])
    cells["dan"] = honest_cells(*rows[10])
    shared = trained_weights(rng), holdout_predictions(rng, labels)
    return _write_class(out, subs, cells, lambda student: shared if student in ("cat", "dan")
                        else (trained_weights(rng), holdout_predictions(rng, labels)))


def _write_class(out: Path, subs: Path, cells: dict[str, list[str]], model_of
                 ) -> dict[str, Path]:
    """Each student's notebook (the starter and their cells) and what the trusted side
    measured of their model: the reference's design, `model_of(student)`'s weights and
    holdout predictions."""
    notebooks = {}
    for student, student_cells in cells.items():
        path = subs / f"{student}.ipynb"
        nbformat.write(notebook(STARTER, student_cells), str(path))
        notebooks[student] = path
        write_student(out, student, f"sha-{student}", REFERENCE_LAYERS, *model_of(student))
    return notebooks


def test_a_class_of_12_flags_exactly_the_two_pairs_each_for_its_reason(tmp_path: Path) -> None:
    out, subs = tmp_path / "out", tmp_path / "subs"
    subs.mkdir()
    notebooks = _class_of_12(out, subs)
    written = write(out, FASHION, notebooks)
    flagged = {(p.a, p.b): p.kinds for p in written.analysis.pairs}
    assert flagged == {("ann", "bob"): ["code"], ("cat", "dan"): ["weights", "predictions"]}
    assert written.flagged == 2
    with written.csv.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["student_a"], r["student_b"], r["evidence"]) for r in rows] == [
        ("cat", "dan", "weights;predictions"), ("ann", "bob", "code")]
    assert float(rows[0]["prediction_agreement"]) == 1.0
    html = written.html.read_text()
    assert "ann and bob" in html and "cat and dan" in html
    assert html.count("<mark>") >= 2  # both sides' matching spans
    assert "<script" not in html
    # deterministic: the same files give the same CSV
    again = write(out, FASHION, notebooks)
    assert again.csv.read_text() == written.csv.read_text()


def test_a_regraded_student_updates_its_pairs(tmp_path: Path) -> None:
    out, subs = tmp_path / "out", tmp_path / "subs"
    subs.mkdir()
    notebooks = _class_of_12(out, subs)
    # dan is regraded: a new notebook, trained on its own. Its old evidence no longer counts.
    result = json.loads((out / "dan" / "result.json").read_text())
    result["notebook_sha256"] = "d" * 64  # not the sha256 its evidence was measured for
    (out / "dan" / "result.json").write_text(json.dumps(result))
    written = write(out, FASHION, notebooks)
    assert {(p.a, p.b) for p in written.analysis.pairs} == {("ann", "bob")}


def test_starter_and_the_reference_design_flag_nothing(tmp_path: Path) -> None:
    out, subs = tmp_path / "out", tmp_path / "subs"
    subs.mkdir()
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 10, 2000)
    notebooks = {}
    for i in range(12):
        student = f"s{i:02d}"
        path = subs / f"{student}.ipynb"
        nbformat.write(notebook(STARTER, []), str(path))
        notebooks[student] = path
        write_student(out, student, f"sha{i}", REFERENCE_LAYERS, trained_weights(rng),
                      holdout_predictions(rng, labels))
    written = write(out, FASHION, notebooks)
    assert written.flagged == 0
    assert written.csv.read_text().splitlines()[1:] == []


def test_two_students_alone_with_an_unusual_design_are_flagged(tmp_path: Path) -> None:
    out = tmp_path / "out"
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 10, 2000)
    unusual = [dict(REFERENCE_LAYERS[0], activation="tanh"), *REFERENCE_LAYERS[1:]]
    for i in range(8):
        name = f"s{i}"
        write_student(out, name, f"sha{i}", unusual if i in (2, 5) else REFERENCE_LAYERS,
                      trained_weights(rng), holdout_predictions(rng, labels),
                      learning_rate=0.003 if i in (2, 5) else 0.001)
    written = write(out, FASHION, {f"s{i}": None for i in range(8)})
    assert [(p.a, p.b, p.kinds) for p in written.analysis.pairs] == [("s2", "s5", ["design"])]
    assert "Dense 128 tanh" in written.analysis.pairs[0].flags[0].sentence


def test_the_references_design_in_the_functional_api_is_not_unusual() -> None:
    """keras.Input in a functional model shows as an InputLayer, and a loss object says
    from_logits=False where a string says nothing: the same design as the reference's, spelled
    another way (two honest students of a real class of 12 were flagged for it)."""
    functional = {"status": "found", "kind": "Functional", "layers": [
        {"class": "InputLayer", "output_shape": [None, 784], "params": 0, "activation": None,
         "config": {}}, *REFERENCE_LAYERS],
        "compile": {"loss": "categorical_crossentropy", "from_logits": False,
                    "optimizer": "Adam", "learning_rate": 0.0010000000474974513}}
    sequential = {**functional, "layers": REFERENCE_LAYERS,
                  "compile": {**functional["compile"], "from_logits": None}}
    assert models.design_key(functional) == models.design_key(sequential)
    assert models.design_key(functional, settings=False) in \
        models.reference_designs(FASHION.expected())["model"]
    assert models.design_text(functional).startswith("Dense 128 relu → Dense 64 relu")


# --- kept from students -----------------------------------------------------------------------

def test_evidence_is_never_in_result_json() -> None:
    result = GradeResult(assignment="a", assignment_title="A", assignment_version="v",
                         notebook="n", notebook_sha256="", score=1.0, max_score=1.0, checks=[],
                         models={}, execution={"status": "completed"}, cell_errors=[], data={},
                         timings={}, grader_version="0", evidence={"models": {}})
    assert "evidence" not in json.loads(result.to_json())
    assert "evidence" in json.loads(result.to_json(evidence=True))


def test_the_store_keeps_evidence_beside_result_json_not_in_it(tmp_path: Path) -> None:
    from rich.console import Console

    from grader.batch.store import ResultStore

    store = ResultStore(tmp_path, Console(file=open("/dev/null", "w")), None)
    result = GradeResult.model_validate(result_json(
        batch={"student": "ann", "status": "completed", "complete": True},
        notebook_sha256="a" * 64, evidence={"leak": True}))
    store.write(result, evidence={"holdout": "h", "models": {}})
    written = json.loads((tmp_path / "ann" / "result.json").read_text())
    assert "evidence" not in written
    assert json.loads((tmp_path / "ann" / "similarity.json").read_text())["holdout"] == "h"
    assert not list((tmp_path / "ann" / "feedback").glob("similarity*"))
    store.write(result.model_copy(update={"notebook_sha256": "b" * 64}))
    assert not (tmp_path / "ann" / "similarity.json").exists()  # an old one goes


def test_code_fingerprints_do_not_depend_on_pythons_hash_seed() -> None:
    """copydetect's own k-gram hash is Python's salted hash(); ours is fixed, so two runs of the
    batch flag the same pairs."""
    import subprocess
    import sys

    program = ("import sys; sys.path.insert(0, 'tests'); from grader.similarity import code; "
               "from similarity_class import honest_cells, notebook; "
               "fp = code._fingerprint(code.code_text(notebook(None, honest_cells(1, 2))), 25, 6)"
               "; print(sorted(int(h) for h in fp.hashes)[:20])")
    runs = {subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                           check=True, env={**__import__("os").environ,
                                            "PYTHONHASHSEED": seed}).stdout
            for seed in ("1", "2")}
    assert len(runs) == 1


def test_the_same_code_explains_the_same_weights(tmp_path: Path) -> None:
    """Under the grader's one seed, identical code (names aside) trains identical weights: a
    class that all handed in the starter filled in with the same code flags nothing, and a
    renamed copy is flagged for its code alone, its sentence saying the models match too."""
    out, subs = tmp_path / "out", tmp_path / "subs"
    subs.mkdir()
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 10, 2000)
    same_weights, same_predictions = trained_weights(rng), holdout_predictions(rng, labels)
    cells = honest_cells(2, 3)
    notebooks = {}
    for i in range(8):
        student = f"s{i}"
        path = subs / f"{student}.ipynb"
        nbformat.write(notebook(STARTER, cells), str(path))
        notebooks[student] = path
        write_student(out, student, f"sha{i}", REFERENCE_LAYERS, same_weights,
                      same_predictions)
    assert write(out, FASHION, notebooks).flagged == 0
    # two students of a class: one copies the other's code under new names
    out2 = tmp_path / "out2"
    own = {f"s{i}": honest_cells(i, 1) for i in range(4)}
    own["s4"] = renamed_and_reordered(own["s0"])
    notebooks = {}
    for name, student_cells in own.items():
        path = subs / f"two-{name}.ipynb"
        nbformat.write(notebook(STARTER, student_cells), str(path))
        notebooks[name] = path
        copy = name in ("s0", "s4")
        write_student(out2, name, f"sha-{name}", REFERENCE_LAYERS,
                      same_weights if copy else trained_weights(rng),
                      same_predictions if copy else holdout_predictions(rng, labels))
    written = write(out2, FASHION, notebooks)
    assert [(p.a, p.b, p.kinds) for p in written.analysis.pairs] == [("s0", "s4", ["code"])]
    assert "weights and holdout predictions are the same" in \
        written.analysis.pairs[0].flags[0].sentence


def test_summary_html_links_the_report_with_its_count() -> None:
    from grader.reports.summary import render_summary

    info = {"id": "fashion-mlp", "title": "t", "version": "v", "max_score": 1, "checks": []}
    assert "3 pairs of similar submissions flagged" in render_summary(info, [], similar=3)
    assert "similarity.html" not in render_summary(info, [])


def test_grade_declares_each_threshold_once_with_its_default() -> None:
    from grader import cli
    from grader.similarity import OPTIONS, cli_flag

    parser = cli.build_parser()
    args = parser.parse_args(["grade", "subs", "--similar-code-similarity", "0.7"])
    thresholds = cli._similarity_thresholds(args)
    assert thresholds.code_similarity == 0.7
    assert thresholds.prediction_agreement == OPTIONS["prediction_agreement"][1]
    assert all(cli_flag(name) in parser._subparsers._group_actions[0].choices["grade"]
               .format_help() for name in OPTIONS)


def test_highlighted_cells_escape_code_and_mark_only_the_matches() -> None:
    from grader.similarity.report import highlighted

    text = "# In [1] (cell 1)\na = '<b>'\nb = 2\n\n# In [2] (cell 3)\nc = 3\n"
    cells = highlighted(text, [(18, 27)])  # "a = '<b>'"
    assert [c["title"] for c in cells] == ["In [1] (cell 1)"]  # cell 3 holds no match
    assert str(cells[0]["html"]).startswith("<mark>a = &#39;&lt;b&gt;&#39;</mark>")


def test_a_group_of_four_copiers_in_a_class_of_twelve_is_flagged() -> None:
    """Code a third of the class shares is not the homework's: all six pairs of the group."""
    rows = [(x, y) for x in range(5) for y in range(5)]
    students = [Student(f"h{i}", _code(honest_cells(*rows[i])), None, None) for i in range(8)]
    source = honest_cells(*rows[8])
    students += [Student(f"c{k}", _code(renamed_and_reordered(source) if k % 2 else source),
                         None, None) for k in range(4)]
    flagged = analyse(students, starter_code(STARTER), None).pairs
    assert sorted((p.a, p.b) for p in flagged) == [
        (f"c{i}", f"c{j}") for i in range(4) for j in range(i + 1, 4)]


def test_a_real_result_of_the_reference_has_the_references_design() -> None:
    """The measuring process's description (a real result.json) and expected.json give the same
    design key: the reference's design is never 'unusual'."""
    result = json.loads((Path(__file__).parent / "fixtures" /
                         "fashion-mlp-reference.result.json").read_text())
    model = result["models"]["model"]
    assert models.design_key(model, settings=False) in \
        models.reference_designs(FASHION.expected())["model"]
    assert models.design_text(model) == ("Dense 128 relu → Dense 64 relu → Dense 10 softmax; "
                                         "optimizer Adam, learning rate 0.001, loss "
                                         "categorical_crossentropy")


# --- the same training code explains the same weights -----------------------------------------

def test_the_training_slice_is_the_code_the_model_depends_on() -> None:
    from grader.similarity.training_code import training_slice
    from similarity_class import RUN_STAGES

    code = _code([*[stage[1] for stage in RUN_STAGES], "print(model.summary())\n"
                  "%matplotlib inline\nmodel.save('mine.keras')\n"], starter=None)
    kept = training_slice(code, "model")
    assert kept is not None
    for needed in ("default_rng(7)", "np.eye(10)[ydev[order]]", "set_random_seed(11)",
                   "Dense(64", "Adam(learning_rate=0.001)", "model.fit(train_x"):
        assert needed in kept, needed
    for left_out in ("evaluate", "print", "summary", "save", "test_acc", "prep(xtest)"):
        assert left_out not in kept.replace("X_all, test_x = (prep(xdev)[order], prep(xtest))",
                                            ""), left_out
    assert training_slice(_code(["print('no model')\n"], starter=None), "model") is None
    assert training_slice("# In [1] (cell 1)\nmodel = (\n", "model") is None  # cannot parse


TORCH_LOOP = """import torch
from torch import nn
torch.manual_seed(0)
xs, ys = torch.rand(100, 784), torch.randint(0, 10, (100,))
loader = torch.utils.data.DataLoader(list(zip(xs, ys)), batch_size=10, shuffle=True)
model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
crit = nn.CrossEntropyLoss()
for epoch in range(2):
    for xb, yb in loader:
        opt.zero_grad()
        loss = crit(model(xb), yb)
        loss.backward()
        opt.step()
with torch.no_grad():
    accuracy = (model(xs).argmax(1) == ys).float().mean()
print(accuracy)
"""


def test_the_training_slice_keeps_a_pytorch_loop_that_steps_the_models_optimizer() -> None:
    """model(xb) does not change the model, opt.step() does: the optimizer made from
    model.parameters() holds its weights."""
    from grader.similarity.training_code import training_slice

    kept = training_slice(_code([TORCH_LOOP], starter=None), "model")
    assert "opt.step()" in kept and "loss.backward()" in kept and "DataLoader" in kept
    assert "manual_seed(0)" in kept and "accuracy" not in kept


def _same_weights_class(out: Path, subs: Path, cells: dict[str, list[str]]) -> dict[str, Path]:
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 10, 2000)
    same = trained_weights(rng), holdout_predictions(rng, labels)
    return _write_class(out, subs, cells, lambda student: same)


def test_the_same_training_code_explains_the_same_weights_whatever_else_differs(
        tmp_path: Path) -> None:
    """Five students train with the same cells (the homework's seed among them) and report
    their own way: the same weights, honestly, though their whole notebooks differ; cat's
    weights are the same too, but her data preparation is not theirs: that is evidence."""
    from similarity_class import RUN_STAGES

    prepare, build, train, report = RUN_STAGES
    training = [prepare[0], build[1], train[0]]  # build[1] seeds: set_random_seed(11)
    cells = {f"s{i}": [*training, report[i]] for i in range(5)}
    cells["cat"] = [prepare[1], *training[1:], report[0]]
    out, subs = tmp_path / "out", tmp_path / "subs"
    subs.mkdir()
    notebooks = _same_weights_class(out, subs, cells)
    written = write(out, FASHION, notebooks)
    flagged = {(p.a, p.b): p.kinds for p in written.analysis.pairs}
    assert flagged == {("cat", f"s{i}"): ["weights", "predictions"] for i in range(5)}
    assert "did not come from each one's own training" in \
        written.analysis.pairs[0].flags[0].sentence
    # most pairs' whole notebooks differ too much for the whole code to explain the weights
    whole = {s: code_mod.fingerprint(s, _code(cells[s]), None, 25, 30) for s in cells}
    differ = [(a, b) for a, b in itertools.combinations(sorted(cells)[1:], 2)
              if min(code_mod.compare(whole[a], whole[b]).similarity_a,
                     code_mod.compare(whole[a], whole[b]).similarity_b) < Thresholds().same_code]
    assert len(differ) >= 5, differ
