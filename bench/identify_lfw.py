"""1:N identification on real faces: LFW through a FaceLedger gallery store.

Gallery: the first image of every LFW person with two or more images (in the
9,056 images the protocol files use), plus every person with a single image as a
distractor subject. Mated probes: the other images of the enrolled people. Each
probe is searched through ``Store.search`` (SQLite store, exact cosine, subjects
ranked by their best template) and, as a peer, by plain numpy over the same
matrix (the two must agree).

* rank-1 hit rate: the mate is the top candidate (closed set, no threshold).
* FNIR at FPIR 1e-2: non-mated searches are the same probes with their own mate
  left out (the best score among the other subjects), so every gallery identity
  serves both roles. The threshold is the one at which 1% of non-mated searches
  return a candidate; FNIR is the share of mated searches whose mate is not the
  rank-1 candidate at or above that threshold (NIST FRVT 1:N, R = 1).

Templates (YuNet + SFace, face "center") are cached under
``~/.cache/faceledger/bench`` (computing them takes a few minutes on 2 cores)::

    .venv/bin/python bench/identify_lfw.py
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from _common import testdata_dir

CACHE_DIR = Path(os.environ.get("FACELEDGER_BENCH_CACHE", Path.home() / ".cache" / "faceledger" / "bench"))


@dataclass(frozen=True)
class LfwTemplates:
    """Real templates of LFW images: ``vectors[i]`` belongs to ``people[i]`` (photo ``paths[i]``)."""

    model_id: str
    paths: list[str]
    people: list[str]
    vectors: np.ndarray  # (n, d) float32, unit rows
    sha256: list[str]


def lfw_images(root: Path) -> list[Path]:
    """Every LFW image, sorted by person then image number."""
    return sorted((root / "lfw" / "images").glob("*/*.jpg"))


def lfw_templates(root: Path | None = None, *, quiet: bool = False) -> LfwTemplates:
    """SFace templates of every LFW image, computed once and cached (``.npz``)."""
    from faceledger import Engine

    root = root or testdata_dir()
    images = lfw_images(root)
    listing = hashlib.sha256("\n".join(str(p.relative_to(root)) for p in images).encode()).hexdigest()[:16]
    engine = Engine()
    cache = CACHE_DIR / f"lfw-{engine.model_id}-{listing}.npz"
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        return LfwTemplates(str(z["model_id"]), list(z["paths"]), list(z["people"]),
                            z["vectors"].astype(np.float32), list(z["sha256"]))
    vectors, shas = [], []
    t0 = time.perf_counter()
    for i, path in enumerate(images):
        t = engine.template(path, face="center")
        vectors.append(t.vector)
        shas.append(t.source_sha256 or "")
        if not quiet and (i + 1) % 500 == 0:
            print(f"  {i + 1}/{len(images)} templates, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    out = LfwTemplates(engine.model_id, [str(p.relative_to(root)) for p in images],
                       [p.parent.name for p in images], np.stack(vectors).astype(np.float32), shas)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, model_id=out.model_id, paths=np.array(out.paths), people=np.array(out.people),
             vectors=out.vectors, sha256=np.array(out.sha256))
    os.replace(tmp, cache)
    return out
