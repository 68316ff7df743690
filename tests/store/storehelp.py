"""Helpers shared by the storage tests (imported as ``storehelp``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from faceledger.store import GallerySettings, NewTemplate

MODEL = "sface-2021dec-int8bq"
DIM = 128
# People of LFW with several photos: the first photo enrols, the second probes.
PEOPLE = ("Colin_Powell", "George_W_Bush", "Tony_Blair", "Serena_Williams", "Gerhard_Schroeder", "Jean_Charest")


@dataclass(frozen=True)
class Face:
    """A real template of an LFW photo."""

    person: str
    vector: np.ndarray
    sha256: str

    def new(self, model: str = MODEL) -> NewTemplate:
        return NewTemplate(self.vector, model, self.sha256, {"size": 110.0, "sharpness": float("nan")})


def settings(**kw: object) -> GallerySettings:
    base: dict[str, object] = dict(model_id=MODEL, dimension=DIM, thresholds={"fmr1e-3": 0.36},
                                   operating_point="fmr1e-3")
    base.update(kw)
    return GallerySettings(**base)  # type: ignore[arg-type]


def unit_vectors(n: int, seed: int, dim: int = DIM) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def new_template(vector: np.ndarray, name: str, model: str = MODEL) -> NewTemplate:
    return NewTemplate(vector, model, sha(name), {"size": 100.0})
