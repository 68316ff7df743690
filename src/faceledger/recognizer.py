"""The recognizer: loaded models and the rules for using them on photos.

A :class:`Recognizer` detects, embeds and compares faces. It stores nothing and
keeps no records, so it cannot identify anyone against a gallery: that, and every
operation of a deployment, goes through :class:`faceledger.engine.Engine`, which
adds consent, policy, authorizations and the ledger. Redaction and evaluation use
a Recognizer directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Literal, NamedTuple, Union

import numpy as np

from faceledger._cv import cv2
from faceledger.core.align import align_face
from faceledger.core.geometry import clip_to_image
from faceledger.core.quality import quality_of
from faceledger.errors import (
    FaceSelectionError,
    ModelMismatchError,
    MultipleFacesError,
    NoFaceError,
)
from faceledger.media.image import DecodedImage, ImageLimits, ImageSource, load_image
from faceledger.models.base import Backend, Detections, DetectOptions
from faceledger.models.coarse import CANVAS, coarse_factor, detect_coarse_to_fine, needs_refining, refine
from faceledger.models.registry import load_backend
from faceledger.types import Box, Face, ModelInfo, Template, VerifyResult

__all__ = ["DEFAULT_BACKEND", "FaceChoice", "Recognizer", "choose_face", "clear_subject", "subject_of"]

DEFAULT_BACKEND = "yunet-sface"
#: A large JPEG (or PNG) searched for faces is decoded at the smallest scale (JPEG 1/2, 1/4,
#: 1/8; PNG 1/2) keeping its long side at least this many pixels; the faces are reported in
#: the photo's own pixels all the same.
WORK_SIDE = 3000
#: The long side of the search for a photo's subject (``template``/``verify`` without a face
#: index): faces of at least 16 px at this scale, 2.5% of the photo's long side.
SUBJECT_SIDE = 640
#: The long side of a first, cheaper search for the subject (face choice ``None``). Its choice
#: stands only when the :data:`SUBJECT_SIDE` search would choose the same face (see
#: :func:`clear_subject`); otherwise that search runs. YuNet costs about a quarter as much here.
SUBJECT_FIRST_SIDE = 320
#: Faces narrower than this many pixels at the first search's scale may go unseen by it
#: (twice the detector's 16 px floor).
SUBJECT_UNSEEN_PX = 32.0
#: How far a face's width or position may move between the two searches, as a share of its
#: width: a decision this close to one of :func:`subject_of`'s limits is left to the finer search.
SUBJECT_SLACK = 0.15
#: The side of the detector's input when the first search's subject is refined on full-resolution
#: pixels: the crop spans two face widths (elsewhere :data:`~faceledger.models.coarse.CANVAS`, 320).
SUBJECT_REFINE_CANVAS = 224

#: Which face of a photo to use: ``None`` the photo's subject (the only face, or the one
#: that is clearly the subject: see :func:`subject_of`; an ambiguous photo is refused);
#: ``"only"`` exactly one face, refusing any photo with more; an ``int`` picks by index in
#: detection order (best score first); ``"largest"`` the widest box; ``"center"`` the
#: face nearest the image centre.
FaceChoice = Union[None, int, Literal["only", "largest", "center"]]

#: A face whose box comes within this share of the image's shorter side of a border is
#: "cut by the frame" (a bystander at the edge, or a subject badly framed).
EDGE_MARGIN = 0.02
#: The subject nearest the centre must be this many times wider than any other whole face...
CENTRAL_RATIO = 1.15
#: ... and a subject off the centre this many times.
OFF_CENTRE_RATIO = 2.0


class Recognizer:
    """Loaded models plus the rules for using them on photos.

    >>> engine = Recognizer()                      # yunet-sface, checked against SHA-256
    >>> result = engine.verify("a.jpg", "b.jpg")
    >>> result.match, result.score, result.threshold
    """

    #: The long side of the first search for a photo's subject (:data:`SUBJECT_FIRST_SIDE`);
    #: ``None`` searches at :data:`SUBJECT_SIDE` only (the behaviour before it, for comparison).
    subject_first_side: int | None = SUBJECT_FIRST_SIDE

    def __init__(
        self,
        backend: str | Backend = DEFAULT_BACKEND,
        *,
        limits: ImageLimits | None = None,
        detect_options: DetectOptions | None = None,
        threads: int | None = None,
        backend_options: Mapping[str, object] | None = None,
    ) -> None:
        """Load ``backend`` (a name from :data:`faceledger.BACKENDS`, or a loaded :class:`Backend`).

        ``backend_options`` go to the backend's ``load()`` (e.g. ``{"spec": "model.toml"}``
        for ``onnx``, ``{"detector": "mmod"}`` for ``dlib``); ``threads`` sets OpenCV's
        thread count for the whole process.
        """
        if threads is not None:
            if threads < 1:
                raise ValueError("threads must be at least 1")
            cv2.setNumThreads(threads)  # process-wide: OpenCV has a single pool
        if isinstance(backend, str):
            self.backend: Backend = load_backend(backend, **dict(backend_options or {}))
        else:
            self.backend = backend
        self.limits = limits or ImageLimits()
        self.detect_options = detect_options or DetectOptions()

    @property
    def info(self) -> ModelInfo:
        return self.backend.info

    @property
    def model_id(self) -> str:
        return self.backend.model_id

    # -- photos -------------------------------------------------------------------
    def load(self, source: ImageSource, *, for_search: bool = False) -> DecodedImage:
        """Decode a photo under this engine's limits (see :func:`faceledger.media.load_image`).

        Full resolution, unless ``for_search``: then a large JPEG or PNG is decoded at a
        reduced scale keeping its long side at least :data:`WORK_SIDE` (faster, and in
        less memory), which is all that detection and templates need; faces are still
        reported in the photo's own pixels. Keep full resolution for pixels you write out.
        """
        return load_image(source, self.limits, max_side=WORK_SIDE if for_search else None)

    def detect(
        self,
        image: ImageSource,
        *,
        min_face_size: float | None = None,
        score_threshold: float | None = None,
        quality: bool = True,
        full_coverage: bool = False,
    ) -> list[Face]:
        """Every face in ``image``, best detection score first, in the photo's own pixels.

        The search is bounded (``DetectOptions.max_side``): a large photo is searched on a
        scaled copy and each face refined on full-resolution pixels. ``full_coverage=True``
        searches every pixel at every scale instead, for the small faces of a crowd.
        ``quality=False`` skips the sharpness measure (it needs an aligned crop per face).
        """
        img = self._image(image)
        return self._detect(img, self._options(min_face_size, score_threshold, full_coverage), quality)

    def embed(self, image: ImageSource, faces: Sequence[Face] | None = None) -> list[Template]:
        """Templates of ``faces`` in ``image`` (every detected face if not given)."""
        img = self._image(image)
        if faces is None:
            faces = self._detect(img, self.detect_options, True)
        return self._embed(img, list(faces))

    def template(self, image: ImageSource, *, face: FaceChoice = None) -> Template:
        """The template of one face of ``image``; see :data:`FaceChoice` for ``face``."""
        img = self._image(image)
        options = self.detect_options
        if options.max_side is not None and not isinstance(face, int):
            # The photo's subject, the largest or the centred face: a coarser search finds it (faces
            # over 2.5% of the long side). A face index refers to detect()'s list: same search as it.
            options = replace(options, max_side=min(options.max_side, SUBJECT_SIDE))
        chosen = self._subject_first(img, options) if face is None else None
        if chosen is None:
            # Coarse detections first: only the face chosen is refined and measured.
            coarse = detect_coarse_to_fine(self.backend.detector, img.rgb, options, refine_faces=False)
            chosen = choose_face(self._faces(img, coarse, False), face, *img.full_size), options, CANVAS
        face, aligned = self._finish(img, *chosen)
        return self._embed(img, [face], [aligned])[0]

    def _subject_first(self, img: DecodedImage, options: DetectOptions) -> tuple[Face, DetectOptions, int] | None:
        """The subject found by the :data:`SUBJECT_FIRST_SIDE` search when it is the one the ``options``
        search would choose (:func:`clear_subject`), with that search's options and refinement
        canvas (:data:`SUBJECT_REFINE_CANVAS`); else ``None``."""
        side = self.subject_first_side
        if side is None or options.max_side is None or options.max_side <= side:
            return None
        first = replace(options, max_side=side)
        factor = coarse_factor(img.width, img.height, first)
        if factor is None:
            return None  # small enough for the detector to search it whole: one search is all it takes
        coarse = detect_coarse_to_fine(self.backend.detector, img.rgb, first, refine_faces=False)
        full_w, full_h = img.full_size
        unseen = SUBJECT_UNSEEN_PX * factor * full_w / img.width
        chosen = clear_subject(self._faces(img, coarse, False), full_w, full_h, unseen)
        return None if chosen is None else (chosen, first, SUBJECT_REFINE_CANVAS)

    # -- comparison -----------------------------------------------------------------
    def compare(self, a: Template, b: Template) -> float:
        """Cosine similarity of two templates of this engine's model, in ``[-1, 1]``."""
        for t in (a, b):
            if t.model_id != self.model_id:
                raise ModelMismatchError(
                    f"template made by model '{t.model_id}' cannot be compared with model "
                    f"'{self.model_id}'; re-create it from the photo"
                )
        # float64, as calibration scores: a pair at the threshold is decided the same way.
        return float(np.clip(np.dot(a.vector.astype(np.float64), b.vector.astype(np.float64)), -1.0, 1.0))

    def verify(
        self,
        a: ImageSource | Template,
        b: ImageSource | Template,
        *,
        face_a: FaceChoice = None,
        face_b: FaceChoice = None,
        operating_point: str | None = None,
    ) -> VerifyResult:
        """Decide whether ``a`` and ``b`` show the same person (1:1).

        Each side is a photo (exactly one face unless ``face_a``/``face_b`` choose one)
        or a :class:`Template`. The threshold is the calibrated one of
        ``operating_point`` (default: the model's default, e.g. ``"fmr1e-3"``).
        """
        point = self.backend.thresholds.get(operating_point)
        ta = a if isinstance(a, Template) else self.template(a, face=face_a)
        tb = b if isinstance(b, Template) else self.template(b, face=face_b)
        score = self.compare(ta, tb)
        return VerifyResult(
            score=score,
            threshold=point.threshold,
            match=score >= point.threshold,
            operating_point=point.name,
            model_id=self.model_id,
            face_a=ta.face,
            face_b=tb.face,
        )

    # -- internals ------------------------------------------------------------------
    def _image(self, source: ImageSource) -> DecodedImage:
        """A photo for searching (``load(for_search=True)``); a decoded image is used as it is."""
        return load_image(source, self.limits, max_side=None if isinstance(source, DecodedImage) else WORK_SIDE)

    def _options(self, min_face_size: float | None, score_threshold: float | None, full: bool) -> DetectOptions:
        changes: dict[str, object] = {}
        if min_face_size is not None:
            changes["min_face_size"] = min_face_size
        if score_threshold is not None:
            changes["score_threshold"] = score_threshold
        if full:
            changes["max_side"] = None
        return replace(self.detect_options, **changes) if changes else self.detect_options  # type: ignore[arg-type]

    def _detect(self, img: DecodedImage, options: DetectOptions, quality: bool) -> list[Face]:
        return self._faces(img, detect_coarse_to_fine(self.backend.detector, img.rgb, options), quality)

    def _finish(self, img: DecodedImage, face: Face, options: DetectOptions,
                canvas: int = CANVAS) -> tuple[Face, _Aligned | None]:
        """``face`` refined on full-resolution pixels (a ``canvas`` px square input) where the coarse copy
        had too few, with its quality; and its aligned crop (from the quality measure, for the embedder)."""
        to_photo = _to_photo(img)
        box = (np.array(face.box.as_tuple()) / np.tile(to_photo, 2)).astype(np.float32)
        marks = (face.landmarks_array() / to_photo).astype(np.float32)
        if needs_refining(float(box[2]), coarse_factor(img.width, img.height, options)):
            refined = refine(self.backend.detector, img.rgb, box, options.score_threshold, canvas)
            if refined is not None:
                box, marks = refined
        found = Detections(box[None], marks[None], np.array([face.score], np.float32))
        crops: list[_Aligned | None] = []
        done = self._faces(img, found, True, crops)
        return (done[0], crops[0]) if done else (face, None)

    def _faces(self, img: DecodedImage, found: Detections, quality: bool,
               crops: list[_Aligned | None] | None = None) -> list[Face]:
        """Typed faces in the photo's own pixels; a detection that is not finite or not inside
        the image is dropped, boxes are clipped to it. ``crops`` (with ``quality``) receives each
        face's aligned crop and the landmarks it was made from (decoded pixels), or None."""
        keep, boxes = clip_to_image(found.boxes, found.landmarks, found.scores, img.width, img.height)
        to_photo = _to_photo(img)
        faces = []
        for box_arr, marks, score in zip(boxes[keep], np.asarray(found.landmarks)[keep],
                                         np.asarray(found.scores)[keep], strict=True):
            photo_box = np.asarray(box_arr, np.float64) * np.tile(to_photo, 2)
            photo_marks = np.asarray(marks, np.float64) * to_photo
            box = Box(*(float(v) for v in photo_box))
            q = None
            if quality:
                crop = align_face(img.rgb, marks) if np.isfinite(marks).sum() >= 4 else None
                q = quality_of(box, photo_marks, crop)
                if crops is not None:
                    crops.append(None if crop is None else _Aligned(np.asarray(marks, np.float32), crop))
            landmarks = tuple((float(x), float(y)) for x, y in photo_marks)
            faces.append(Face(box=box, landmarks=landmarks, score=float(score), quality=q))  # type: ignore[arg-type]
        return faces

    def _embed(self, img: DecodedImage, faces: list[Face],
               aligned: Sequence[_Aligned | None] | None = None) -> list[Template]:
        """Templates of ``faces``; ``aligned`` crops (one per face) are used by an embedder that takes
        :func:`align_face` crops (``embed_aligned``) when they were made from these very landmarks."""
        if not faces:
            return []
        to_photo = _to_photo(img)
        boxes = np.array([f.box.as_tuple() for f in faces], np.float32) / np.tile(to_photo, 2).astype(np.float32)
        marks = np.array([f.landmarks for f in faces], np.float32) / to_photo.astype(np.float32)
        embed_aligned = getattr(self.backend.embedder, "embed_aligned", None)
        if embed_aligned is not None and aligned is not None and all(
                a is not None and np.array_equal(a.landmarks, m) for a, m in zip(aligned, marks, strict=True)):
            vectors = embed_aligned([a.crop for a in aligned])  # type: ignore[union-attr]
        else:
            vectors = self.backend.embedder.embed(img.rgb, boxes, marks)
        out = []
        for face, vec in zip(faces, vectors, strict=True):
            vec = np.ascontiguousarray(vec, dtype=np.float32)
            vec.setflags(write=False)
            out.append(Template(vector=vec, model_id=self.model_id, face=face, source_sha256=img.sha256))
        return out


class _Aligned(NamedTuple):
    """A face's :func:`align_face` crop and the landmarks (decoded pixels, float32) it was made from."""

    landmarks: np.ndarray
    crop: np.ndarray


def _to_photo(img: DecodedImage) -> np.ndarray:
    """Per-axis factors from decoded pixels to the photo's own pixels (1, 1 for a full decode)."""
    full_w, full_h = img.full_size
    return np.array([full_w / img.width, full_h / img.height], np.float64)


def choose_face(faces: Sequence[Face], choice: FaceChoice, width: int, height: int) -> Face:
    """Apply a :data:`FaceChoice` to detected faces, refusing silent picks."""
    if not faces:
        raise NoFaceError("no face found in the photo")
    if choice is None or choice == "only":
        chosen = faces[0] if len(faces) == 1 else (subject_of(faces, width, height) if choice is None else None)
        if chosen is None:
            hint = "" if choice is None else " (exactly one face is required here)"
            raise MultipleFacesError(
                f"{len(faces)} faces found and none is clearly the subject{hint}; "
                "choose one (a face index, 'largest' or 'center')",
                count=len(faces),
                boxes=[f.box.as_tuple() for f in faces],
            )
        return chosen
    if isinstance(choice, bool) or not isinstance(choice, (int, str)):
        raise FaceSelectionError("invalid face choice: use an index, 'largest' or 'center'")
    if isinstance(choice, int):
        if not 0 <= choice < len(faces):
            raise FaceSelectionError(f"face index {choice} is out of range: {len(faces)} face(s) found")
        return faces[choice]
    if choice == "largest":
        return max(faces, key=lambda f: f.box.area)
    if choice == "center":
        return _nearest_centre(faces, width, height)
    raise FaceSelectionError("invalid face choice: use an index, 'only', 'largest' or 'center'")


def subject_of(faces: Sequence[Face], width: int, height: int) -> Face | None:
    """The face that is clearly the subject of the photo, or ``None`` when that is not clear.

    * The candidate is the widest face not cut by the frame (its box stays more than
      :data:`EDGE_MARGIN` of the shorter side away from every border).
    * If the candidate is also the face nearest the image centre, faces cut by the frame
      are bystanders, and every other whole face must be :data:`CENTRAL_RATIO` times
      narrower.
    * Otherwise every other whole face must be :data:`OFF_CENTRE_RATIO` times narrower,
      and every face cut by the frame narrower.

    Measured on LFW View 2 (where a sixth of the photos show more than one face): 2 of
    600 pairs of fold 1 and 1 of 600 of fold 2 refused, and every face chosen is the
    centred subject (``tests/models/test_face_choice.py``).
    """
    if len(faces) == 1:
        return faces[0]
    margin = EDGE_MARGIN * min(width, height)

    def cut(f: Face) -> bool:
        b = f.box
        return b.x <= margin or b.y <= margin or b.x + b.w >= width - margin or b.y + b.h >= height - margin

    whole = [f for f in faces if not cut(f)]
    if not whole:
        return None
    candidate = max(whole, key=lambda f: f.box.w)
    central = _nearest_centre(faces, width, height) is candidate
    ratio = CENTRAL_RATIO if central else OFF_CENTRE_RATIO
    for f in faces:
        if f is candidate:
            continue
        if cut(f):
            if not central and f.box.w >= candidate.box.w:
                return None
        elif candidate.box.w < ratio * f.box.w:
            return None
    return candidate


def clear_subject(faces: Sequence[Face], width: int, height: int, unseen_below: float) -> Face | None:
    """The face :func:`subject_of` would choose among ``faces`` *and any faces narrower than
    ``unseen_below`` that a coarser search may have missed*, when that is certain; else ``None``.

    Certain means: every face is clearly whole or clearly cut by the frame, and the candidate
    (the widest whole face) passes the off-centre rule (an unseen face may be nearer the centre)
    against every other face and against a whole face just under ``unseen_below``, each with
    :data:`SUBJECT_SLACK` to spare (widths and positions move a little between searches).
    ``None`` does not refuse anything: the caller runs the finer search and :func:`subject_of`.
    """
    if not faces:
        return None
    margin = EDGE_MARGIN * min(width, height)
    whole: dict[int, Face] = {}
    for f in faces:
        b = f.box
        room = min(b.x, b.y, width - b.x - b.w, height - b.y - b.h) - margin
        if abs(room) <= SUBJECT_SLACK * b.w:
            return None  # too near the line between whole and cut
        if room > 0:
            whole[id(f)] = f
    if not whole:
        return None
    candidate = max(whole.values(), key=lambda f: f.box.w)
    need = 1.0 + SUBJECT_SLACK
    if candidate.box.w < need * OFF_CENTRE_RATIO * unseen_below:
        return None
    for f in faces:
        if f is candidate:
            continue
        ratio = OFF_CENTRE_RATIO if id(f) in whole else 1.0
        if candidate.box.w < need * ratio * f.box.w:
            return None
    return candidate


def _nearest_centre(faces: Sequence[Face], width: int, height: int) -> Face:
    cx, cy = width / 2.0, height / 2.0
    return min(faces, key=lambda f: (f.box.center[0] - cx) ** 2 + (f.box.center[1] - cy) ** 2)
