"""Calibrated decision thresholds, stored as JSON beside each backend.

A thresholds file is written by calibration (``bench/calibrate.py`` on LFW View 1)
and read here; a backend with no file, or an operating point it does not name,
refuses to decide (:class:`~faceledger.errors.NotCalibratedError`) rather than guess.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from faceledger.errors import ConfigError, NotCalibratedError
from faceledger.types import OperatingPoint

__all__ = ["Thresholds", "load_packaged_thresholds", "thresholds_from_dict"]


@dataclass(frozen=True)
class Thresholds:
    """The operating points of one model, and which one is used by default."""

    model_id: str
    points: dict[str, OperatingPoint] = field(default_factory=dict)
    default: str | None = None
    calibration: dict[str, object] = field(default_factory=dict)

    def get(self, name: str | None = None) -> OperatingPoint:
        name = name or self.default
        if name is None or not self.points:
            raise NotCalibratedError(
                f"model '{self.model_id}' has no calibrated thresholds; "
                "calibrate it (bench/calibrate.py) before deciding matches"
            )
        try:
            return self.points[name]
        except KeyError:
            known = ", ".join(sorted(self.points)) or "none"
            raise NotCalibratedError(
                f"model '{self.model_id}' has no operating point '{name}' (calibrated: {known})"
            ) from None


def thresholds_from_dict(data: dict, source: str = "<dict>") -> Thresholds:
    """Validate and build :class:`Thresholds` from the JSON layout calibration writes."""
    try:
        model_id = str(data["model_id"])
        dataset = str(data.get("calibration", {}).get("dataset", "unknown"))
        points = {
            name: OperatingPoint(
                name=name,
                target_fmr=float(p["target_fmr"]),
                threshold=float(p["threshold"]),
                measured_fmr=float(p["measured_fmr"]),
                measured_fnmr=float(p["measured_fnmr"]),
                dataset=dataset,
                fmr_upper=None if p.get("fmr_upper") is None else float(p["fmr_upper"]),
            )
            for name, p in data["operating_points"].items()
        }
        default = data.get("default")
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: invalid thresholds file ({exc!r})") from None
    if default is not None and default not in points:
        raise ConfigError(f"{source}: default operating point '{default}' is not defined")
    return Thresholds(model_id, points, default, dict(data.get("calibration", {})))


def load_packaged_thresholds(model_id: str) -> Thresholds:
    """Thresholds shipped in ``faceledger/models/thresholds/<model_id>.json``; empty if none."""
    res = resources.files("faceledger.models") / "thresholds" / f"{model_id}.json"
    if not res.is_file():
        return Thresholds(model_id)
    return thresholds_from_dict(json.loads(res.read_text()), source=str(res))


def load_thresholds_file(path: Path) -> Thresholds:
    """Thresholds from a JSON file of the same layout (e.g. a user's own calibration)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read thresholds ({exc})") from None
    return thresholds_from_dict(data, source=str(path))
