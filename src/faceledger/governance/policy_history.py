"""Which policy was in force, and what changed between two: the content of ``policy_change`` entries.

Every ledger entry carries the digest of the policy in force (:attr:`Policy.digest`). The
store also keeps the content of the policy last recorded (a ``policy`` record named
``current``), so that when an engine starts with, reloads, or is given a different policy,
the ``policy_change`` entry it writes can say what changed, key by key, and not only that
the digest moved.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_CHANGES", "POLICY_RECORD", "diff_policies", "policy_change_result"]

#: Record kind and id of the policy last recorded on the ledger.
POLICY_RECORD = ("policy", "current")
MAX_CHANGES = 64


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def diff_policies(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``[{"key", "old", "new"}]`` for every setting that differs (dotted keys as in the TOML file,
    sorted); every setting of ``new`` when there is no ``old``."""
    a, b = _flatten(old or {}), _flatten(new)
    return [{"key": k, "old": a.get(k), "new": b.get(k)} for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def policy_change_result(old: Mapping[str, Any] | None, new: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The ``result`` of a ``policy_change`` entry. ``old``/``new`` are ``{"digest", "policy"}``;
    ``source`` says how the change came: ``"engine"`` (an admin through the Engine), ``"file"``
    (a policy file read at start or edited since), ``"default"`` (no policy file)."""
    changes = diff_policies(old["policy"] if old else None, new["policy"])
    return {"old_digest": old["digest"] if old else None, "new_digest": new["digest"], "source": source,
            "changes": changes[:MAX_CHANGES], "changes_total": len(changes)}
