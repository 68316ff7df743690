"""Template id -> row of the in-memory index, in 12 bytes per template instead of a dict's ~110.

Ids are kept in a sorted int64 array with an int32 row beside each (``-1``: removed);
ids that do not extend the sorted run go to a small dict, merged into the arrays
once it grows past an eighth of them. Template ids are issued in increasing order,
so enrollment (and loading a gallery) almost always appends to the arrays.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RowMap"]


class RowMap:
    """A mapping of template ids to rows (not thread-safe: the index locks around it)."""

    def __init__(self) -> None:
        self._keys = np.zeros(0, np.int64)
        self._rows = np.zeros(0, np.int32)
        self._len = 0  # used prefix of the arrays (they grow by doubling)
        self._extra: dict[int, int] = {}
        self._live = 0

    def __len__(self) -> int:
        return self._live

    def _find(self, ids: np.ndarray) -> np.ndarray:
        """Positions of ``ids`` in the sorted arrays (``-1`` where absent or removed)."""
        if self._len == 0:
            return np.full(len(ids), -1, np.int64)
        keys = self._keys[:self._len]
        pos = np.minimum(np.searchsorted(keys, ids), self._len - 1)
        hit = (keys[pos] == ids) & (self._rows[pos] >= 0)
        return np.where(hit, pos, -1)

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Rows of ``ids`` (``-1`` for ids not present)."""
        ids = np.asarray(ids, np.int64)
        pos = self._find(ids)
        out = np.full(len(ids), -1, np.int64)
        out[pos >= 0] = self._rows[pos[pos >= 0]]
        if self._extra:
            for i, t in enumerate(ids.tolist()):
                if out[i] < 0:
                    out[i] = self._extra.get(t, -1)
        return out

    def add(self, ids: np.ndarray, rows: np.ndarray) -> None:
        """Map new ``ids`` (not present) to ``rows``."""
        ids, rows = np.asarray(ids, np.int64), np.asarray(rows, np.int32)
        if not len(ids):
            return
        self._live += len(ids)
        last = self._keys[self._len - 1] if self._len else np.iinfo(np.int64).min
        if ids[0] > last and np.all(np.diff(ids) > 0):  # extends the sorted run: append
            need = self._len + len(ids)
            if need > len(self._keys):
                cap = max(need, 2 * len(self._keys), 1024)
                self._keys = np.concatenate([self._keys[:self._len], np.zeros(cap - self._len, np.int64)])
                self._rows = np.concatenate([self._rows[:self._len], np.zeros(cap - self._len, np.int32)])
            self._keys[self._len:need], self._rows[self._len:need] = ids, rows
            self._len = need
            return
        self._extra.update(zip(ids.tolist(), rows.tolist(), strict=True))
        if len(self._extra) > max(1024, self._len // 8):
            self._merge()

    def set(self, tid: int, row: int) -> None:
        """Move a present id to another row."""
        if tid in self._extra:
            self._extra[tid] = row
        else:
            self._rows[self._find(np.array([tid], np.int64))[0]] = row

    def pop(self, tid: int) -> int:
        """Remove a present id; returns its row."""
        self._live -= 1
        if tid in self._extra:
            return self._extra.pop(tid)
        pos = self._find(np.array([tid], np.int64))[0]
        row = int(self._rows[pos])
        self._rows[pos] = -1
        return row

    def ids(self) -> np.ndarray:
        """Every present id (unordered)."""
        live = self._keys[:self._len][self._rows[:self._len] >= 0]
        return np.concatenate([live, np.fromiter(self._extra, np.int64, len(self._extra))])

    def _merge(self) -> None:
        keep = self._rows[:self._len] >= 0
        extra_ids = np.fromiter(self._extra, np.int64, len(self._extra))
        extra_rows = np.fromiter(self._extra.values(), np.int32, len(self._extra))
        keys = np.concatenate([self._keys[:self._len][keep], extra_ids])
        rows = np.concatenate([self._rows[:self._len][keep], extra_rows])
        order = np.argsort(keys, kind="stable")
        self._keys, self._rows, self._len, self._extra = keys[order], rows[order], len(keys), {}
