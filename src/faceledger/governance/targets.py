"""Declared targets of an identification search: a closed vocabulary, normalised before it is checked.

A search declares what it is aimed at (``missing_person``, ``suspect``, ...). The words
come from the policy: ``[targets] allowed`` (what a search may be aimed at) and
``[prohibited] targets`` (what it may never be aimed at; ``lawful_assembly``, ``protest``
and ``religious_activity`` always). Anything else is refused, so a new spelling cannot
slip a prohibited aim past the check.

Normalisation of what a caller typed, in order:

1. format characters (zero-width spaces and joiners, bidi overrides, soft hyphens) removed;
2. Unicode NFKC (full-width letters, ligatures), then case folded;
3. runs of spaces, hyphens, dashes and underscores become one ``_``, ends stripped;
4. a word is matched with its separators removed too (``lawful-assembly``,
   ``lawful assembly`` and ``lawfulassembly`` are one word), and with a simple plural
   removed (``protests``, ``lawful_assemblies``, ``religious_activities``).

What is left must be ASCII. A word with other letters is never mapped onto an allowed
target; if those letters look like Latin ones (Cyrillic ``е``, Greek ``ο``, ...) and the
look-alike spells a prohibited target, it is refused *as prohibited*; otherwise it is
refused as unknown.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from faceledger.errors import InputError, ProhibitedUseError, UnknownTargetError

__all__ = [
    "DEFAULT_ALLOWED_TARGETS",
    "DEFAULT_PROHIBITED_TARGETS",
    "MAX_TARGETS",
    "Target",
    "canonical_term",
    "check_targets",
    "resolve_targets",
    "targets_summary",
]

#: Targets that identification may never be aimed at; a policy can add to them, not remove them.
DEFAULT_PROHIBITED_TARGETS = frozenset({"lawful_assembly", "protest", "religious_activity"})
#: What a search may be aimed at when the policy does not say (``[targets] allowed``).
DEFAULT_ALLOWED_TARGETS = frozenset({"missing_person", "suspect", "victim", "witness"})
MAX_TARGETS = 16
MAX_TARGET_CHARS = 64

_SEPARATORS = re.compile(r"[\s_\-\u2010-\u2015\u2212\uFE58\uFE63\uFF0D]+")
_ASCII_TERM = re.compile(r"^[a-z0-9_]+$")
#: Letters of other scripts that look like Latin ones (the common confusables of Cyrillic and Greek).
_LOOKALIKES = str.maketrans({
    "а": "a", "в": "b", "с": "c", "ԁ": "d", "е": "e", "ё": "e", "һ": "h", "і": "i", "ї": "i", "ј": "j",
    "к": "k", "ӏ": "l", "м": "m", "н": "h", "о": "o", "р": "p", "ԛ": "q", "ѕ": "s", "т": "t", "у": "y",
    "х": "x", "ԝ": "w", "ь": "b", "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v",
    "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ѵ": "v", "ɑ": "a", "ɡ": "g", "ı": "i",
})  # fmt: skip


@dataclass(frozen=True, slots=True)
class Target:
    """One declared target: as given (non-ASCII escaped, for the ledger), the vocabulary
    term it normalises to (``None``: not in the vocabulary) and whether it is prohibited."""

    given: str
    term: str | None
    prohibited: bool = False
    lookalike: bool = False


def canonical_term(text: str) -> str:
    """Steps 1-3 of the normalisation (format characters, NFKC, case, separators)."""
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    text = unicodedata.normalize("NFKC", text).casefold()
    return _SEPARATORS.sub("_", text).strip("_")


def _compact(term: str) -> str:
    return term.replace("_", "")


def _singulars(word: str) -> list[str]:
    out = [word]
    if word.endswith("ies") and len(word) > 4:
        out.append(word[:-3] + "y")
    if word.endswith("es") and len(word) > 3:
        out.append(word[:-2])
    if word.endswith("s") and not word.endswith("ss") and len(word) > 2:
        out.append(word[:-1])
    return out


def _escaped(text: str) -> str:
    return text[:MAX_TARGET_CHARS].encode("ascii", "backslashreplace").decode("ascii")


def _lookup(index: dict[str, str], term: str) -> str | None:
    for candidate in _singulars(_compact(term)):
        if candidate in index:
            return index[candidate]
    return None


def resolve_targets(given: Iterable[str], allowed: Iterable[str], prohibited: Iterable[str]) -> tuple[Target, ...]:
    """Each declared target normalised against the vocabulary (never raises for a word it does not know)."""
    if isinstance(given, str):
        raise InputError("declared targets are a list of words, not one string", field="targets")
    items = list(given)
    if len(items) > MAX_TARGETS:
        raise InputError(f"at most {MAX_TARGETS} declared targets, got {len(items)}", field="targets")
    banned = {_compact(t): t for t in prohibited}
    index = {**{_compact(t): t for t in allowed}, **banned}
    out = []
    for raw in items:
        if not isinstance(raw, str):
            raise InputError("a declared target must be text", field="targets")
        term = canonical_term(raw)
        if len(raw) > MAX_TARGET_CHARS or not term:
            out.append(Target(_escaped(raw), None))
        elif _ASCII_TERM.match(term):
            hit = _lookup(index, term)
            out.append(Target(_escaped(raw), hit, hit in banned.values()))
        else:
            hit = _lookup(banned, canonical_term(term.translate(_LOOKALIKES)))
            out.append(Target(_escaped(raw), hit, hit is not None, lookalike=True))
    return tuple(out)


def check_targets(targets: Iterable[Target]) -> frozenset[str]:
    """The vocabulary terms, or the refusal: a prohibited target first (:class:`ProhibitedUseError`,
    reason ``"prohibited_target"``), then an unknown one (:class:`UnknownTargetError`)."""
    targets = tuple(targets)
    banned = sorted({t.term for t in targets if t.prohibited and t.term})
    if banned:
        raise ProhibitedUseError(f"identification targeting {', '.join(banned)} is prohibited",
                                 reason="prohibited_target", flags=banned)
    unknown = [t.given for t in targets if t.term is None]
    if unknown:
        raise UnknownTargetError(
            f"declared target(s) {', '.join(repr(u) for u in unknown)} are not in the policy's vocabulary "
            "([targets] allowed)", targets=unknown)
    return frozenset(t.term for t in targets if t.term)


def targets_summary(targets: Iterable[Target]) -> dict[str, Any]:
    """What the ledger records of the declared targets, allowed or refused."""
    targets = tuple(targets)
    return {"given": [t.given for t in targets], "normalised": [t.term for t in targets],
            "prohibited": sorted({t.term for t in targets if t.prohibited and t.term})}
