"""Every pair of a class's students, compared by code and by what the trusted side measured of
their models; the pairs with at least one flag, each flag with a sentence a TA can act on.

Deterministic: students are taken in sorted order, pairs as (first, second) in that order, and
the flagged pairs sorted by their strongest evidence, then by names. For a class of hundreds,
code is compared only for pairs sharing enough non-starter fingerprints to possibly reach the
threshold (an inverted index), and weights and predictions as whole matrices.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..result import GradeResult
from . import Thresholds, code as code_mod, models, training_code
from ..measure.fingerprint import labels_of


@dataclass
class Student:
    name: str
    code: str | None  # the notebook's code cells (code.code_text), None: no notebook
    result: GradeResult | None  # result.json
    evidence: dict[str, Any] | None  # similarity.json: the trusted side's measurements


@dataclass
class Flag:
    kind: str  # code | weights | predictions | design
    sentence: str
    value: float | None = None  # similarity, distance or agreement
    model: str | None = None


@dataclass
class Pair:
    a: str
    b: str
    flags: list[Flag] = field(default_factory=list)
    code: code_mod.CodeMatch | None = None  # the match, whether or not it was flagged

    @property
    def kinds(self) -> list[str]:
        return sorted({f.kind for f in self.flags}, key=KINDS.index)


KINDS = ["weights", "predictions", "code", "design"]


@dataclass
class Analysis:
    pairs: list[Pair]
    students: int
    compared_code: int  # pairs whose code copydetect compared
    with_evidence: int  # students with the trusted side's measurements
    thresholds: Thresholds


def analyse(students: list[Student], starter_code: str | None, expected: dict[str, Any] | None,
            thresholds: Thresholds | None = None) -> Analysis:
    t = thresholds or Thresholds()
    students = sorted(students, key=lambda s: s.name)
    pairs: dict[tuple[str, str], Pair] = {}

    def pair(a: str, b: str) -> Pair:
        key = (a, b) if a < b else (b, a)
        if key not in pairs:
            pairs[key] = Pair(*key)
        return pairs[key]

    compared = _code_pairs(students, starter_code, t, pair)
    evidence = {s.name: s.evidence for s in students if _current(s)}
    _weight_pairs(evidence, t, pair)
    _prediction_pairs(evidence, t, pair)
    _design_pairs(students, expected, t, pair)
    _explained_by_the_same_code(pairs.values(), {s.name: s.code for s in students}, t)
    flagged = [p for p in pairs.values() if p.flags]
    for p in flagged:
        p.flags.sort(key=lambda f: (KINDS.index(f.kind), f.model or ""))
    flagged.sort(key=lambda p: (min(KINDS.index(k) for k in p.kinds), p.a, p.b))
    return Analysis(flagged, len(students), compared, len(evidence), t)


def _explained_by_the_same_code(pairs, codes: dict[str, str | None], t: Thresholds) -> None:
    """The grader runs every notebook from the same seed (and a homework's starter may fix one
    too), so two notebooks whose code that trains a model is the same (names aside) train the
    same weights and give the same predictions honestly, whatever else they hold: that model's
    weights and predictions flags are dropped; when their code is flagged, its sentence says
    the models are the same too."""
    prints: dict[tuple[str, str | None], code_mod.Notebook | None] = {}

    def printed(name: str, model: str | None) -> code_mod.Notebook | None:
        """The notebook's whole code (model None) or the slice that trains `model`."""
        if (name, model) not in prints:
            text = codes[name] or "" if model is None else \
                training_code.training_slice(codes[name] or "", model)
            prints[(name, model)] = None if text is None else code_mod.fingerprint(
                name, text, None, t.code_noise, t.code_guarantee)
        return prints[(name, model)]

    def same(a: str, b: str, model: str | None) -> bool:
        pa, pb = printed(a, model), printed(b, model)
        if pa is None or pb is None:
            return False
        if pa.fingerprint.filtered_code == pb.fingerprint.filtered_code:
            return True
        match = code_mod.compare(pa, pb)
        return min(match.similarity_a, match.similarity_b) >= t.same_code

    for p in pairs:
        model = [f for f in p.flags if f.kind in ("weights", "predictions")]
        if not model or not codes.get(p.a) or not codes.get(p.b):
            continue
        explained = [f for f in model if same(p.a, p.b, f.model) or same(p.a, p.b, None)]
        if not explained:
            continue
        p.flags = [f for f in p.flags if f not in explained]
        for f in p.flags:
            if f.kind == "code":
                f.sentence += (" Their models' weights and holdout predictions are the same "
                               "too, as the same training code gives under the grader's "
                               "fixed seed.")


def _current(student: Student) -> bool:
    """Evidence of the grading result.json records (a regraded notebook's old one is ignored)."""
    ev, result = student.evidence, student.result
    return isinstance(ev, dict) and result is not None and \
        ev.get("notebook_sha256") == result.notebook_sha256 and \
        isinstance(ev.get("models"), dict)


def _code_pairs(students: list[Student], starter_code: str | None, t: Thresholds, pair) -> int:
    starter = code_mod.boilerplate(starter_code, t.code_noise)
    coded = [s for s in students if s.code]
    prints = [code_mod.fingerprint(s.name, s.code, starter, t.code_noise, t.code_guarantee)
              for s in coded]
    common = _common_hashes(prints, t.code_common)
    if len(common):  # the class's common code is boilerplate too
        starter = np.union1d(starter, common)
        prints = [code_mod.fingerprint(s.name, s.code, starter, t.code_noise, t.code_guarantee)
                  for s in coded]
    index: dict[int, list[int]] = defaultdict(list)
    for i, nb in enumerate(prints):
        for h in nb.fingerprint.hashes:
            index[int(h)].append(i)
    shared: dict[tuple[int, int], int] = defaultdict(int)
    for holders in index.values():
        if len(holders) > 1:
            for i, j in itertools.combinations(holders, 2):
                shared[(i, j)] += 1
    compared = 0
    for (i, j), count in sorted(shared.items()):
        a, b = prints[i], prints[j]
        smallest = min(len(a.fingerprint.hashes), len(b.fingerprint.hashes))
        if count < t.code_similarity * smallest / 2:  # cannot reach the threshold
            continue
        compared += 1
        match = code_mod.compare(a, b)
        if match.similarity >= t.code_similarity and match.tokens >= t.code_min_chars:
            p = pair(a.student, b.student)
            if (p.a, p.b) != (match.a, match.b):
                match = code_mod.CodeMatch(match.b, match.a, match.similarity_b,
                                           match.similarity_a, match.tokens, match.slices_b,
                                           match.slices_a)
            p.code = match
            p.flags.append(Flag("code", (
                f"{_pct(match.similarity_a)} of {p.a}'s own code (the starter's, and code "
                f"most of the class shares, left out) "
                f"matches {p.b}'s, and {_pct(match.similarity_b)} of {p.b}'s matches {p.a}'s, "
                "with names, strings, comments and layout ignored: read the highlighted "
                "code of both side by side below; renamed variables and reordered cells do "
                "not hide a copy, so ask both to explain their code."), match.similarity))
    return compared


def _common_hashes(prints: list[code_mod.Notebook], fraction: float) -> np.ndarray:
    """Fingerprints at least `fraction` of the notebooks (and at least 3) hold."""
    counts: dict[int, int] = defaultdict(int)
    for nb in prints:
        for h in nb.fingerprint.hashes:
            counts[int(h)] += 1
    least = max(3, int(np.ceil(fraction * len(prints))))
    return np.array(sorted(h for h, n in counts.items() if n >= least), dtype=np.int64)


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def _weight_pairs(evidence: dict[str, dict[str, Any]], t: Thresholds, pair) -> None:
    groups: dict[tuple[str, str], list[tuple[str, np.ndarray, str]]] = defaultdict(list)
    for student, ev in sorted(evidence.items()):
        for name, entry in sorted(ev["models"].items()):
            fp = entry.get("weights") if isinstance(entry, dict) else None
            if not fp or not fp.get("tensors"):
                continue
            shapes = repr([(tuple(x["shape"]), len(x["sample"])) for x in fp["tensors"]])
            vector = np.concatenate([np.asarray(x["sample"], "float64") for x in fp["tensors"]])
            groups[(name, shapes)].append((student, vector, str(fp.get("digest"))))
    for (name, _), members in sorted(groups.items()):
        if len(members) < 2:
            continue
        v = np.stack([m[1] for m in members])
        norms = np.linalg.norm(v, axis=1)
        sq = np.maximum((v * v).sum(1)[:, None] + (v * v).sum(1)[None, :] - 2 * v @ v.T, 0)
        scale = (norms[:, None] + norms[None, :]) / 2
        with np.errstate(invalid="ignore", divide="ignore"):
            dist = np.where(scale > 0, np.sqrt(sq) / scale, 0.0)
        for i, j in zip(*np.nonzero(np.triu(dist <= t.weights_distance, 1))):
            (sa, va, da), (sb, vb, db) = members[i], members[j]
            # the pair's own distance, not the Gram matrix's rounding
            d = float(np.linalg.norm(va - vb) / max((np.linalg.norm(va) + np.linalg.norm(vb))
                                                    / 2, 1e-300))
            if d > t.weights_distance:
                continue
            p = pair(sa, sb)
            same = "identical" if da == db else f"near-identical (relative distance {d:.4f})"
            p.flags.append(Flag("weights", (
                f"{p.a}'s and {p.b}'s `{name}` have {same} trained weights, as the grader's "
                "own measuring process read them from the models (layer names aside); two "
                "independent trainings are about 1 apart. Their code that prepares the data, "
                "builds and trains the model differs (the grader compared it, names aside; the "
                "same code would train the same weights under the grader's fixed seed), so "
                "the weights did not come from each one's own training: compare the two "
                "notebooks' training cells, and ask both where the weights came from."),
                d, name))


def _prediction_pairs(evidence: dict[str, dict[str, Any]], t: Thresholds, pair) -> None:
    groups: dict[tuple[str, str, int], list[tuple[str, np.ndarray]]] = defaultdict(list)
    for student, ev in sorted(evidence.items()):
        for name, entry in sorted(ev["models"].items()):
            labels = labels_of(entry.get("labels")) if isinstance(entry, dict) else None
            if labels is not None and len(labels):
                groups[(str(ev.get("holdout")), name, len(labels))].append((student, labels))
    for (_, name, n), members in sorted(groups.items()):
        if len(members) < 2:
            continue
        labels = np.stack([m[1] for m in members]).astype(np.int64)
        classes = int(labels.max()) + 1
        onehot = np.zeros((len(members), n * classes), dtype=np.float32)
        rows = np.repeat(np.arange(len(members)), n)
        onehot[rows, (np.arange(n)[None, :] * classes + labels).ravel()] = 1.0
        agree = (onehot @ onehot.T) / n
        for i, j in zip(*np.nonzero(np.triu(agree >= t.prediction_agreement, 1))):
            value = float(np.mean(members[i][1] == members[j][1]))
            if value < t.prediction_agreement:
                continue
            p = pair(members[i][0], members[j][0])
            p.flags.append(Flag("predictions", (
                f"{p.a}'s and {p.b}'s `{name}` give the same label to {100 * value:.1f}% of the "
                f"grader's {n} private holdout images (flagged from "
                f"{100 * t.prediction_agreement:.1f}%), far more than two independent trainings "
                "of one design agree: the two models are very likely one trained model. Check "
                "the weights and code evidence, and ask both how they trained it."),
                value, name))


def _design_pairs(students: list[Student], expected: dict[str, Any] | None, t: Thresholds,
                  pair) -> None:
    found = {s.name: models.found_models(s.result) for s in students if s.result is not None}
    rare = models.rare_designs(found, models.reference_designs(expected or {}),
                               t.design_max_students, t.design_min_class)
    measured = defaultdict(int)
    for descriptions in found.values():
        for name in descriptions:
            measured[name] += 1
    for (name, _), holders in sorted(rare.items()):
        text = models.design_text(found[holders[0]][name])
        for a, b in itertools.combinations(sorted(holders), 2):
            p = pair(a, b)
            others = ", ".join(h for h in holders if h not in (p.a, p.b))
            p.flags.append(Flag("design", (
                f"{p.a} and {p.b}" + (f" (and {others})" if others else "") +
                f" are the only students of the {measured[name]} whose `{name}` was measured "
                f"to choose this design: {text}. The reference's is different: a design chosen "
                "independently is rarely identical, so ask each to explain their choices."),
                float(len(holders)), name))
