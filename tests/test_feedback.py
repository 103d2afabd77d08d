"""What a student, a TA and CI read: cell errors as Jupyter labels them, TA overrides of automatic
checks in every report, the class matrix of summary.html, and the unchanged-starter flag.

The Keras tracebacks in fixtures/keras_tracebacks.json are what a real kernel (Keras 3 on
TensorFlow 2.21) printed for `model.fit` on images of the wrong shape, and for `model.predict`
called inside a function, with colour codes stripped as the runner does.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import re
from pathlib import Path

import nbformat
import pytest
from rich.console import Console

from grader.ta import manual_scores
from grader import assignment as spec
from grader.submission import starter
from grader.reports import render
from grader.reports.cell_errors import views
from grader.reports.classroom import classroom_payload
from grader.reports.gradescope import to_gradescope
from grader.reports.html import render_html
from grader.reports.markdown import render_markdown
from grader.reports.summary import render_summary
from grader.reports.terminal import render as render_terminal
from grader.result import GradeResult
from test_reports import sample_class, sample_result

REPO = Path(__file__).resolve().parents[1]
TRACEBACKS = json.loads((REPO / "tests" / "fixtures" / "keras_tracebacks.json").read_text())
NOT_IMPLEMENTED = """---------------------------------------------------------------------------
NotImplementedError                       Traceback (most recent call last)
Cell In[6], line 1
----> 1 gradients, L = back_propagation(X, Y, weights)
      2 print(L)

Cell In[5], line 8, in back_propagation(X, Y_T, weights)
      7     # YOUR CODE HERE
----> 8     raise NotImplementedError()

NotImplementedError: """
NAME_ERROR = """NameError                                 Traceback (most recent call last)
Cell In[7], line 1
----> 1 pp.pprint(gradients)

NameError: name 'gradients' is not defined"""


def terminal_text(result: dict) -> str:
    console = Console(file=io.StringIO(), width=120, color_system=None)
    render_terminal(result, console)
    return console.file.getvalue()


def errors_result(errors: list[dict]) -> dict:
    result = sample_result()
    result["cell_errors"] = errors
    return result


# --- cell errors ----------------------------------------------------------------------------------

def test_errors_are_labelled_as_jupyter_shows_them_and_the_first_is_the_likely_cause():
    errors = [{"cell": 7, "execution_count": 6, "ename": "NotImplementedError", "evalue": "",
               "line": 8, "traceback": NOT_IMPLEMENTED},
              {"cell": 8, "execution_count": 7, "ename": "NameError",
               "evalue": "name 'gradients' is not defined", "line": 1, "traceback": NAME_ERROR}]
    text = terminal_text(errors_result(errors))
    # In [6] is the cell's own line 1, not the line 8 of the function defined in In [5].
    assert "In [6] (cell 8), line 1: NotImplementedError" in text
    assert "raised in In [5], line 8, in back_propagation: raise NotImplementedError()" in text
    assert "fix this first" in text and "likely the cause of the 1 NameError after it" in text
    assert "In [7] (cell 9), line 1: NameError: name 'gradients' is not defined" in text
    assert "probably because In [6] failed" in text
    assert "keras" not in text.lower().split("in [6]")[1]  # the student's line is known


def test_a_keras_error_shows_the_students_line_not_keras_internals():
    errors = [{"cell": 3, "execution_count": 2, "ename": "ValueError",
               "evalue": "Exception encountered when calling Sequential.call().\n\nInvalid input "
                         "shape for input Tensor(...). Expected shape (None, 784), but input "
                         "has incompatible shape (None, 28, 28)",
               "line": 321,  # the runner's guess: the last arrow, inside Keras
               "traceback": TRACEBACKS["fit_wrong_input_shape"]}]
    text = terminal_text(errors_result(errors))
    assert "In [2] (cell 4), line 3: ValueError: Invalid input shape" in text
    assert "3 │ model.fit(x, y, epochs=1, verbose=0)" in text
    assert "raised in keras" not in text  # the student's own line is in the traceback
    assert "line 321" not in text


def test_the_keras_frame_is_named_when_the_students_line_is_not_in_the_traceback():
    full = TRACEBACKS["predict_in_a_function"]
    cut = full[full.index("File /usr/lib/python3/dist-packages/keras/src/layers"):]  # kept tail
    errors = [{"cell": 4, "execution_count": 3, "ename": "ValueError", "evalue": "…",
               "line": 239, "traceback": cut}]
    text = terminal_text(errors_result(errors))
    assert ("raised in keras/src/layers/input_spec.py, line 239, in "
            "assert_input_compatibility") in text
    view = views(errors)[0]
    assert view.student_frame is None and view.origin.where.startswith("keras/")
    # With the whole traceback the student's frames are there, Keras's re-raise is never named.
    whole = views([dict(errors[0], traceback=full)])[0]
    assert whole.origin is None and whole.student_frame.function == "f"
    assert whole.entry_frame.line == 3 and whole.deeper.line == 2


def test_html_and_markdown_use_the_same_labels():
    errors = [{"cell": 7, "execution_count": 6, "ename": "NotImplementedError", "evalue": "",
               "line": 8, "traceback": NOT_IMPLEMENTED},
              {"cell": 8, "execution_count": 7, "ename": "NameError",
               "evalue": "name 'gradients' is not defined", "line": 1, "traceback": NAME_ERROR}]
    page = render_html(errors_result(errors))
    assert "<b>In [6]</b>" in page and "Fix this first" in page
    assert "Probably because In [6] failed" in page
    md = render_markdown(errors_result(errors))
    assert "<summary>In [6] (cell 8), line 1: NotImplementedError" in md
    assert "← fix this first" in md


# --- TA overrides of automatic checks -------------------------------------------------------------

def graded() -> GradeResult:
    return GradeResult.model_validate(sample_result())


def overridden() -> GradeResult:
    result = graded()
    changed = manual_scores.apply(result, [manual_scores.ManualScore(
        "alice", "model-layers", 3, "Dropout before the output is allowed")])
    assert changed != result and result == graded()  # a new result; the old one is as it was
    return changed


def test_an_override_sets_the_points_and_keeps_the_graders_verdict():
    result = overridden()
    check = result.checks[0]
    assert check.points == 3 and check.status == "passed"
    details = check.details
    assert details["ta_override"] and details["auto_points"] == 1.0
    assert details["auto_status"] == "partial" and details["auto_message"].startswith("layer 2")
    assert check.message.startswith("graded by TA: 3/3 — Dropout before the output is allowed")
    assert "the grader gave 1/3, partial: layer 2" in check.message
    # model-optimizer is still the grader's error: not a zero, so there is no score yet
    assert result.score is None
    # Idempotent; and removing the row gives back exactly what the grader said.
    assert manual_scores.apply(result, [manual_scores.ManualScore(
        "alice", "model-layers", 3, "Dropout before the output is allowed")]) == result
    restored = manual_scores.apply(result, [])
    assert restored != result
    assert restored.checks == graded().checks
    assert restored.score is None


def test_a_ta_scoring_the_check_the_grader_failed_on_gives_the_notebook_its_score():
    result = manual_scores.apply(graded(), [
        manual_scores.ManualScore("alice", "model-layers", 3, "Dropout before the output is allowed"),
        manual_scores.ManualScore("alice", "model-optimizer", 1, "Adam, checked by hand")])
    optimizer = next(c for c in result.checks if c.id == "model-optimizer")
    assert optimizer.status == "passed"
    assert result.score == pytest.approx(12.2)  # the grader's 9.2, +2 and +1 from the TA
    withdrawn = manual_scores.apply(result, [])  # the grader's error is back
    optimizer = next(c for c in withdrawn.checks if c.id == "model-optimizer")
    assert optimizer.status == "error" and withdrawn.score is None


def test_an_override_can_lower_points_and_survives_a_regrade():
    result = manual_scores.apply(graded(), [manual_scores.ManualScore(
        "alice", "model-accuracy", 2, "trained on the test set")])
    check = result.checks[5]
    assert check.points == 2 and check.status == "partial"
    # the same notebook graded again: the TA's points are re-applied
    fresh = manual_scores.apply(graded(), manual_scores.carried_over(result), authoritative=False)
    assert fresh.checks[5].points == 2 and fresh.checks[5].details["auto_points"] == 5


def test_the_scores_file_takes_automatic_checks_within_their_points(tmp_path):
    assignment = spec.load("fashion-mlp")
    path = tmp_path / "scores.csv"
    path.write_text("student,check,points,comment\nalice,model-layers,3,fine\n"
                    "bob,model-accuracy,6,too many\nbob,nope,1,\n")
    with pytest.raises(manual_scores.ManualScoresError) as caught:
        manual_scores.load(path, assignment, ["alice", "bob"])
    assert "6 points for bob/model-accuracy is outside 0..5" in str(caught.value)
    assert "unknown check 'nope'" in str(caught.value)
    path.write_text("student,check,points,comment\nalice,model-layers,3,fine\n")
    assert manual_scores.load(path, assignment, ["alice"])["alice"][0].points == 3


def test_every_report_shows_the_override_as_the_tas():
    result = overridden()
    text = terminal_text(result)
    assert "passed (TA)" in text and "TA: 3/3 — Dropout before the output is allowed" in text
    assert "grader: 1/3 partial: layer 2" in text
    page = render_html(result)
    assert 'class="ta-badge"' in page and "TA: 3/3" in page
    assert "the grader gave 1/3 (partial): layer 2" in page
    md = render_markdown(result)
    assert "| 3 (TA) | 3 | passed | graded by TA: 3/3" in md
    gradescope = to_gradescope(result)["tests"][0]
    assert gradescope["name"].endswith("(TA)") and "ta-override" in gradescope["tags"]
    assert gradescope["score"] == 3 and "the grader gave 1/3" in gradescope["output"]
    tests = [t for t in classroom_payload(result)["tests"] if t["test_code"] == "model-layers"]
    assert all(t["status"] == "pass" and t["name"].startswith("Layers") and "(TA)" in t["name"]
               for t in tests)
    assert "graded by TA: 3/3" in tests[0]["message"]
    decoded = json.loads(base64.b64decode(render(result, "classroom")))
    assert decoded == classroom_payload(result)


# --- summary.html: the student × check matrix ----------------------------------------------------

@pytest.fixture(scope="module")
def summary_page() -> str:
    info, students = sample_class()
    return render_summary(info, students)


def _row(page: str, student: str) -> str:
    return re.search(rf'<tr style="[^"]*">\s*<td class="m-student"><a href="{re.escape(student)}'
                     rf'/report.html">{re.escape(student)}</a></td>.*?</tr>', page, re.S).group(0)


def test_matrix_shows_points_per_check_coloured_by_status(summary_page):
    bob = _row(summary_page, "bob")
    cells = re.findall(r'<td class="mc st-(\w+)"[^>]*>([^<]*)', bob)
    assert cells[0] == ("partial", "1") and cells[3] == ("failed", "0")
    assert ("partial", "1.2") in cells and cells[1] == ("passed", "2")
    assert "<sup>TA</sup>" in _row(summary_page, "dana")
    assert "<script" not in summary_page and "default-src 'none'" in summary_page


def test_matrix_flags_each_student(summary_page):
    def flags(student):
        return re.findall(r'<span class="fl fl-\w+"[^>]*>([^<]*)</span>', _row(summary_page, student))
    assert flags("carol") == ["unchanged starter", "3 cell errors"]
    assert flags("erin") == ["timeout", "1 cell error"]
    assert flags("frank") == ["grader error"]
    assert flags("grace") == ["no notebook"]
    assert flags("dana") == ["TA override"]
    assert flags("alice") == []


def test_matrix_sorts_without_scripts(summary_page):
    """Each header links to #by-KEY; a CSS rule per key orders the rows by their rank there."""
    def order(key):
        ranks = {}
        for style, student in re.findall(r'<tr style="([^"]*)">\s*<td class="m-student"><a '
                                         r'href="[^"]*">([^<]*)</a>', summary_page):
            ranks[student] = int(re.search(rf"--by-{re.escape(key)}: (\d+);", style).group(1))
        return sorted(ranks, key=ranks.get)
    for key in ("score", "score-desc", "c0", "flags-desc", "student"):
        assert f'href="#by-{key}"' in summary_page
        assert f'id="by-{key}"' in summary_page
        assert f"#by-{key}:target ~ .matrix-wrap tbody tr {{ order: var(--by-{key}); }}" \
            in summary_page
    assert order("score-desc")[:2] == ["alice", "dana"]  # 16 each: ties stay alphabetical
    assert order("score-desc")[-2:] == ["frank", "grace"]  # not graded: last
    assert order("score")[0] in ("frank", "grace")
    assert order("c0")[:4] == ["frank", "carol", "grace", "bob"]  # not graded, 0, 0, then 1
    assert order("student")[0] == "a-student-with-a-very-long-folder-name"


def test_summary_keeps_its_inputs():
    """grader/batch calls render_summary(info, entries) with results from older graders too."""
    info, students = sample_class()
    for entry in students:
        entry["result"].pop("unchanged_starter", None)
    page = render_summary(info, students)
    assert "unchanged starter" not in page.split("Students × checks")[1].split("</table>")[0]


# --- unchanged starter ----------------------------------------------------------------------------

def test_unchanged_starter_ignores_outputs_markdown_and_blank_lines(tmp_path):
    assignment = spec.load("fashion-mlp")
    nb = nbformat.read(str(assignment.starter), as_version=4)
    ran = copy.deepcopy(nb)
    for cell in ran.cells:
        if cell.cell_type == "code":
            cell.source = "\n" + cell.source + "   \n\n"
            cell.outputs = [nbformat.v4.new_output("stream", text="ran it")]
        else:
            cell.source += "\n\nmy notes"
    ran.cells.append(nbformat.v4.new_code_cell(""))
    assert starter.unchanged(ran, assignment.starter) is True
    edited = copy.deepcopy(nb)
    code = next(c for c in edited.cells if c.cell_type == "code" and "YOUR CODE" in c.source
                or c.cell_type == "code" and "model" in c.source)
    code.source += "\nmodel = None"
    assert starter.unchanged(edited, assignment.starter) is False
    assert starter.unchanged(None, assignment.starter) is None
    assert starter.unchanged(nb, tmp_path / "missing.ipynb") is None


def test_a_name_error_is_put_down_to_the_failure_just_before_it():
    """A timed-out sleep in In [1] is not why `gradients` is missing: In [6] failed to make it."""
    timeout = {"cell": 1, "execution_count": 1, "ename": "CellTimeoutError",
               "evalue": "the cell ran longer than its 60 s limit", "line": None, "traceback": ""}
    errors = [timeout,
              {"cell": 7, "execution_count": 6, "ename": "NotImplementedError", "evalue": "",
               "line": 8, "traceback": NOT_IMPLEMENTED},
              {"cell": 8, "execution_count": 7, "ename": "NameError",
               "evalue": "name 'gradients' is not defined", "line": 1, "traceback": NAME_ERROR}]
    shown = views(errors)
    assert [v.causes for v in shown] == [0, 1, 0] and shown[2].caused_by == "In [6]"
    text = terminal_text(errors_result(errors))
    assert "In [6] (cell 8), line 1: NotImplementedError\n  ← fix this first: likely the cause " \
           "of the 1 NameError after it" in text
    assert "probably because In [6] failed" in text
