"""Written answers a TA grades: the grader collects each answer's text; TA points merge in later."""

from __future__ import annotations

import re

from ..result import CheckResult
from ..scoring import CheckStatus
from ..assignment import CheckSpec
from .context import GradingContext

MAX_ANSWER_CHARS = 5000
# Text the starter notebooks put where an answer goes (nbgrader's convention and the seed's).
PLACEHOLDERS = ("YOUR ANSWER HERE", "Solution Here")


def _marker(question: str) -> re.Pattern[str]:
    """'2.1' matches '**2.1 [4pts]**' or '2.1 True/False', not '2.10' or '12.1'."""
    return re.compile(rf"(?<![\d.]){re.escape(question)}(?![\d])")


def _is_question_cell(source: str, pattern: re.Pattern[str]) -> bool:
    head = source.lstrip("#*> \t\n")[:40]
    return bool(pattern.match(head) or pattern.search(head[:12]))


def find_answer(notebook, question: str, all_questions: list[str]) -> str | None:
    """The markdown after the question's cell, up to the next question; None if no question."""
    if notebook is None:
        return None
    this = _marker(question)
    others = [_marker(q) for q in all_questions if q != question]
    cells = notebook.cells
    start = next((i for i, c in enumerate(cells)
                  if c.cell_type == "markdown" and _is_question_cell(c.source, this)), None)
    if start is None:
        return None
    parts = []
    for cell in cells[start + 1:]:
        if cell.cell_type == "markdown" and any(_is_question_cell(cell.source, o) for o in others):
            break
        if cell.cell_type == "markdown":
            parts.append(cell.source)
    text = "\n\n".join(parts)
    for placeholder in PLACEHOLDERS:
        text = text.replace(placeholder, "")
    return text.strip()[:MAX_ANSWER_CHARS]


def manual(spec: CheckSpec, ctx: GradingContext) -> CheckResult:
    question = spec.options.question or spec.id
    siblings = [str(q) for q in ctx.notes.get("manual_questions", [question])]
    answer = find_answer(ctx.notebook, question, siblings)
    if answer is None:
        message = f"question {question} was not found in the notebook (was its cell deleted?)"
    elif not answer:
        message = f"no answer to question {question}"
    else:
        first = answer.splitlines()[0][:100]
        message = f"awaiting TA grading; answer begins: {first}"
    return CheckResult(spec.id, spec.title, 0.0, spec.points, CheckStatus.MANUAL, message,
                       {"question": question, "answer": answer or ""})
