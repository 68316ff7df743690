"""Five-point similarity alignment to the canonical 112x112 ArcFace-style crop.

The similarity transform (rotation, uniform scale, translation) that maps the
detected landmarks onto a reference layout is estimated in closed form by least
squares (Umeyama, 1991), then applied with :func:`cv2.warpAffine`.
"""

from __future__ import annotations

import numpy as np

from faceledger._cv import cv2

__all__ = ["ARCFACE_112", "align_face", "similarity_transform"]

#: Reference landmark positions in a 112x112 crop, in :mod:`faceledger.types`
#: landmark order (image-left eye, image-right eye, nose, image-left mouth corner,
#: image-right mouth corner). This is the layout ArcFace-style models (SFace,
#: InsightFace's recognisers) are trained on.
ARCFACE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform mapping ``src`` points onto ``dst``.

    Both are ``(n, 2)`` arrays with ``n >= 2``; rows holding ``nan`` are ignored.
    Returns the 2x3 matrix ``M`` such that ``dst ~= M @ [x, y, 1]``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    keep = np.isfinite(src).all(axis=1) & np.isfinite(dst).all(axis=1)
    src, dst = src[keep], dst[keep]
    if len(src) < 2:
        raise ValueError("a similarity transform needs at least two finite points")
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s_c, d_c = src - mu_s, dst - mu_d
    var_s = (s_c**2).sum() / len(src)
    if var_s <= 1e-12:
        raise ValueError("landmarks are degenerate (all points coincide)")
    cov = d_c.T @ s_c / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1.0
    rot = u @ np.diag(d) @ vt
    scale = (sig * d).sum() / var_s
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def align_face(
    image: np.ndarray,
    landmarks: np.ndarray,
    size: int = 112,
    reference: np.ndarray = ARCFACE_112,
) -> np.ndarray:
    """Warp ``image`` so that ``landmarks`` land on ``reference`` scaled to ``size``.

    ``reference`` is given for a 112x112 crop and scaled by ``size / 112``.
    Returns a ``(size, size, channels)`` array of the input's dtype and channel order.

    A face more than twice the crop's size is first reduced with an area filter by a whole
    number (only the region the crop covers), so the bilinear warp never skips pixels: a face that
    fills a 40 MP photo is sampled as faithfully as one of LFW's.
    """
    dst = reference * (size / 112.0)
    m = similarity_transform(landmarks, dst)
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if scale < _REDUCE_BELOW:
        reduced = _reduce_region(image, m, size, scale)
        if reduced is not None:
            image, m = reduced
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


#: Below this scale (crop pixels per image pixel) the source region is area-reduced first.
_REDUCE_BELOW = 0.5


def _reduce_region(image: np.ndarray, m: np.ndarray, size: int, scale: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The region of ``image`` that ``m`` maps into the crop, area-reduced by the whole number
    ``floor(1 / scale)``; and the new matrix.

    OpenCV's area filter is fast only for a whole-number factor; what is left (between 1x and 2x)
    the bilinear warp does without skipping a pixel. A reduced pixel stands at the centre of its
    k x k cell (the half-pixel offset matters: without it a large face's crop is shifted).
    """
    inv = cv2.invertAffineTransform(m)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float64)
    src = corners @ inv.T
    h, w = image.shape[:2]
    k = int(1.0 / scale)
    x0, y0 = (max(0, int(np.floor(v)) - 2) for v in src.min(axis=0))
    x1, y1 = min(w, int(np.ceil(src[:, 0].max())) + 2), min(h, int(np.ceil(src[:, 1].max())) + 2)
    # A whole number of k x k cells: grown to the next one inside the image, else cut.
    x1, y1 = min(w, x0 + -(-(x1 - x0) // k) * k), min(h, y0 + -(-(y1 - y0) // k) * k)
    x1, y1 = x1 - (x1 - x0) % k, y1 - (y1 - y0) % k
    if x1 - x0 < 2 * k or y1 - y0 < 2 * k:
        return None
    region = cv2.resize(image[y0:y1, x0:x1], ((x1 - x0) // k, (y1 - y0) // k), interpolation=cv2.INTER_AREA)
    c = (k - 1) / 2.0
    to_image = np.array([[k, 0.0, x0 + c], [0.0, k, y0 + c], [0.0, 0.0, 1.0]])  # region pixel -> image pixel
    return region, m @ to_image
