"""Vector similarity for templates."""

from __future__ import annotations

import numpy as np

__all__ = ["cosine", "l2_normalize"]


def l2_normalize(vectors: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Scale each row (or a single vector) to unit L2 norm, as float32."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(norms, eps)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity in ``[-1, 1]`` of two vectors (normalised here, so any scale works)."""
    a = l2_normalize(np.ravel(a))
    b = l2_normalize(np.ravel(b))
    if a.shape != b.shape:
        raise ValueError(f"vectors differ in dimension: {a.shape[0]} vs {b.shape[0]}")
    return float(np.clip(np.dot(a, b), -1.0, 1.0))
