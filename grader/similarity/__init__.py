"""Similar submissions, flagged for the TA: `grader grade` writes OUT/similarity.html and
OUT/similarity.csv (the flagged pairs) beside the gradebook, from every student's stored data,
each time the batch finishes (so a regraded student's pairs follow its new grading).

Evidence, each kind in its own module:
- code.py: the notebooks' code cells compared by copydetect, the starter's code as boilerplate;
- models.py: from what the trusted side measured only (grader/measure/fingerprint.py, recorded
  by the measuring process and kept in OUT/<student>/similarity.json): near-identical weights,
  holdout predictions that agree far more than independent trainings do, a rare design two students
  share;
- training_code.py: the code that trains a model (a slice of the notebook), whose sameness
  explains the same weights honestly;
- pairs.py: every pair of students, each flag with a sentence a TA can act on;
- report.py: similarity.html and similarity.csv.

It never changes a score, and nothing of it is in a student's result.json, report or feedback.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

# OUT/<student>/similarity.json: the trusted side's measurements (grader/batch/store.py writes it)
EVIDENCE_FILE = "similarity.json"

# Each threshold once: its type, default and help, for `grader grade`'s options and the report.
OPTIONS = {
    "code_similarity": (float, 0.6, "flag two notebooks when at least this fraction of one's "
                        "own code (the starter's code left out) matches the other's, after "
                        "names, strings and comments are filtered out (copydetect)"),
    "code_min_chars": (int, 120, "and the matching code is at least this many filtered "
                       "characters long (a few shared lines are not evidence)"),
    "code_common": (float, 0.5, "ignore code that at least this fraction of the class's "
                    "notebooks (and at least 3) have in common, like the starter's: what the "
                    "homework dictates is no evidence (a group of copiers this large would "
                    "hide too)"),
    "code_noise": (int, 25, "copydetect's noise threshold: matches shorter than this many "
                   "filtered characters are ignored"),
    "code_guarantee": (int, 30, "copydetect's guarantee threshold: matches this long are "
                       "always found"),
    "weights_distance": (float, 0.02, "flag two models whose trained weights (a name-free "
                         "fingerprint the grader's measuring process takes) differ by at most "
                         "this relative distance; independent trainings are about 1 apart"),
    "prediction_agreement": (float, 0.985, "flag two models whose labels on the grader's "
                             "private holdout agree on at least this fraction of the images; "
                             "the reference designs trained from seeds 0-2 agree at most 0.934 "
                             "(fashion-mlp) and 0.907 (lenet5's cnn): "
                             "bench/similarity_calibrate.py"),
    "same_code": (float, 0.9, "do not flag identical weights or predictions of two notebooks "
                  "whose code that trains the model (the statements it depends on: data "
                  "preparation, seeds, the model, compile() and fit(); plots and prints "
                  "aside) matches at least this much both ways, names aside: the grader runs "
                  "every notebook from the same seed, and a homework may fix one too, so the "
                  "same training code trains the same weights honestly"),
    "design_max_students": (int, 2, "flag a design (architecture and compile settings) that "
                            "at most this many students share and the reference does not use"),
    "design_min_class": (int, 6, "look for rare designs only in a class of at least this many "
                         "students with that model measured"),
}


@dataclass(frozen=True)
class Thresholds:
    code_similarity: float = OPTIONS["code_similarity"][1]
    code_min_chars: int = OPTIONS["code_min_chars"][1]
    code_common: float = OPTIONS["code_common"][1]
    code_noise: int = OPTIONS["code_noise"][1]
    code_guarantee: int = OPTIONS["code_guarantee"][1]
    weights_distance: float = OPTIONS["weights_distance"][1]
    prediction_agreement: float = OPTIONS["prediction_agreement"][1]
    same_code: float = OPTIONS["same_code"][1]
    design_max_students: int = OPTIONS["design_max_students"][1]
    design_min_class: int = OPTIONS["design_min_class"][1]

    def as_dict(self) -> dict[str, float | int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def cli_flag(name: str) -> str:
    return "--similar-" + name.replace("_", "-")
