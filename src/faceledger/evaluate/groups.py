"""Error rates per subgroup at ONE global threshold: the NIST IR 8280 presentation (pure numpy).

Every group is measured at the same operating threshold, the one the deployment
uses; thresholds are never tuned per group, since differences in error rates at a
fixed threshold are exactly what an audit must show. For an attribute (a column of
the operator's labels) and each of its values ``g``:

* **FNMR(g)**: genuine comparisons whose two photos are both labelled ``g``;
* **FMR(g)**: impostor comparisons whose two photos are both labelled ``g``
  (same-group impostors, the pairs most likely to be confused);
* each rate relative to the overall rate (all comparisons, labelled or not), and
  the max/min ratio across groups (``None`` when the smallest rate is 0);
* ``cross``: the FMR of impostor pairs whose photos carry different labels.

Comparisons with an unlabelled photo, and genuine pairs whose two photos carry
different labels, are counted but belong to no group. Intervals come from
:mod:`faceledger.evaluate.bootstrap` (subjects resampled within the group), seeded
from the attribute and group names, so relabelling one group changes no other
group's numbers.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from faceledger.evaluate.bootstrap import Interval, rate_interval

__all__ = ["AttributeRates", "Comparisons", "GroupRates", "group_rates", "rates_for"]


@dataclass(frozen=True)
class Comparisons:
    """Scored comparisons between photos ``a[j]`` and ``b[j]`` (row indices of the photo list).

    ``scores`` are similarities (higher = more alike; a photo without a template scores
    the failure score, a non-match); ``genuine[j]`` says whether both photos show the same
    person; ``subject[i]`` is the identity number of photo ``i``.
    """

    scores: np.ndarray
    genuine: np.ndarray
    a: np.ndarray
    b: np.ndarray
    subject: np.ndarray

    def subset(self, mask: np.ndarray) -> Comparisons:
        return Comparisons(self.scores[mask], self.genuine[mask], self.a[mask], self.b[mask], self.subject)

    @property
    def n_genuine(self) -> int:
        return int(np.count_nonzero(self.genuine))

    @property
    def n_impostor(self) -> int:
        return int(self.genuine.size - self.n_genuine)


@dataclass(frozen=True)
class GroupRates:
    """FMR and FNMR of one group at the global threshold, with intervals and ratios to overall."""

    group: str
    n_genuine: int
    n_impostor: int
    n_subjects: int
    false_non_matches: int
    false_matches: int
    fnmr: Interval
    fmr: Interval
    fnmr_ratio: float | None = None
    fmr_ratio: float | None = None

    def to_dict(self) -> dict[str, object]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["fnmr"], out["fmr"] = self.fnmr.to_dict(), self.fmr.to_dict()
        return out


@dataclass(frozen=True)
class AttributeRates:
    """Every group of one attribute at ``threshold``, the overall rates and the disparity ratios."""

    attribute: str
    threshold: float
    overall: GroupRates
    groups: tuple[GroupRates, ...]
    cross: GroupRates | None
    fmr_max_min_ratio: float | None
    fnmr_max_min_ratio: float | None
    unlabelled_genuine: int
    unlabelled_impostor: int
    mixed_label_genuine: int

    def to_dict(self) -> dict[str, object]:
        return {
            "attribute": self.attribute,
            "threshold": self.threshold,
            "overall": self.overall.to_dict(),
            "groups": [g.to_dict() for g in self.groups],
            "cross_group_impostors": self.cross.to_dict() if self.cross else None,
            "fmr_max_min_ratio": self.fmr_max_min_ratio,
            "fnmr_max_min_ratio": self.fnmr_max_min_ratio,
            "unlabelled_genuine": self.unlabelled_genuine,
            "unlabelled_impostor": self.unlabelled_impostor,
            "mixed_label_genuine": self.mixed_label_genuine,
        }


def _seed(seed: int, *names: str) -> int:
    return (seed * 1_000_003 + zlib.crc32(":".join(names).encode())) % (2**32)


def rates_for(
    comp: Comparisons, threshold: float, name: str, replicates: int = 200, level: float = 0.95, seed: int = 0
) -> GroupRates:
    """FMR and FNMR of ``comp`` at ``threshold`` (match: ``score >= threshold``) with intervals."""
    g, i = comp.genuine, ~comp.genuine
    sa, sb = comp.subject[comp.a], comp.subject[comp.b]
    fnm = comp.scores[g] < threshold
    fm = comp.scores[i] >= threshold
    return GroupRates(
        group=name,
        n_genuine=int(g.sum()),
        n_impostor=int(i.sum()),
        n_subjects=int(np.unique(np.concatenate([sa, sb])).size),
        false_non_matches=int(fnm.sum()),
        false_matches=int(fm.sum()),
        fnmr=rate_interval(fnm, sa[g], sb[g], replicates, level, _seed(seed, name, "fnmr")),
        fmr=rate_interval(fm, sa[i], sb[i], replicates, level, _seed(seed, name, "fmr")),
    )


def _ratio(rate: float, overall: float) -> float | None:
    return float(rate / overall) if overall > 0 and np.isfinite(rate) else None


def _max_min(values: list[float]) -> float | None:
    vals = [v for v in values if np.isfinite(v)]
    if len(vals) < 2 or min(vals) <= 0:
        return None
    return float(max(vals) / min(vals))


def group_rates(
    comp: Comparisons,
    labels: Sequence[str | None],
    threshold: float,
    attribute: str,
    replicates: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> AttributeRates:
    """Per-group FMR/FNMR of ``attribute`` at the single global ``threshold``.

    ``labels[i]`` is photo ``i``'s label (``None``: unlabelled), from the operator's file.
    """
    lab = np.array([x if x is not None else "" for x in labels], dtype=object)
    la, lb = lab[comp.a], lab[comp.b]
    labelled = (la != "") & (lb != "")
    same = labelled & (la == lb)
    overall = rates_for(comp, threshold, f"{attribute}:*", replicates, level, seed)
    overall = replace(overall, group="overall")
    groups = []
    for value in sorted({str(x) for x in lab if x != ""}):
        r = rates_for(comp.subset(same & (la == value)), threshold, f"{attribute}:{value}", replicates, level, seed)
        groups.append(replace(r, group=value, fnmr_ratio=_ratio(r.fnmr.estimate, overall.fnmr.estimate),
                              fmr_ratio=_ratio(r.fmr.estimate, overall.fmr.estimate)))
    cross_mask = labelled & ~same & ~comp.genuine
    cross = None
    if cross_mask.any():
        c = rates_for(comp.subset(cross_mask), threshold, f"{attribute}:cross", replicates, level, seed)
        cross = replace(c, group="cross-group impostors", fmr_ratio=_ratio(c.fmr.estimate, overall.fmr.estimate))
    return AttributeRates(
        attribute=attribute,
        threshold=float(threshold),
        overall=overall,
        groups=tuple(groups),
        cross=cross,
        fmr_max_min_ratio=_max_min([r.fmr.estimate for r in groups if r.n_impostor]),
        fnmr_max_min_ratio=_max_min([r.fnmr.estimate for r in groups if r.n_genuine]),
        unlabelled_genuine=int(np.count_nonzero(~labelled & comp.genuine)),
        unlabelled_impostor=int(np.count_nonzero(~labelled & ~comp.genuine)),
        mixed_label_genuine=int(np.count_nonzero(labelled & ~same & comp.genuine)),
    )
