"""Galleries, consent, enrollment, erasure, retention and data-subject access."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from faceledger.errors import (
    ConflictError,
    EnrollmentRejectedError,
    FaceLedgerError,
    FaceSelectionError,
    NotFoundError,
)
from faceledger.governance.builders import ConsentRequest, check_subject_ref
from faceledger.governance.consent import (
    ConsentRecord,
    check_supersession,
    consent_from_dict,
    require_valid_consent,
    validate_new_consent,
    withdraw,
)
from faceledger.governance.export import subject_export
from faceledger.governance.ledger import LedgerEntry
from faceledger.governance.policy import check_purpose
from faceledger.governance.retention import RetentionPlan, SubjectInfo, plan_retention
from faceledger.governance.roles import Operation
from faceledger.media.image import ImageSource
from faceledger.recognizer import FaceChoice, choose_face
from faceledger.store.base import Gallery, GallerySettings, GalleryStats, NewTemplate, Subject
from faceledger.types import Face

from ._base import EngineBase, Op
from .evidence import face_crop
from .replays import purge_answers
from .results import Actor, EnrollResult

__all__ = ["DEFAULT_QUALITY_GATE", "GalleryOps"]

#: Enrollment quality gate: box width in pixels, variance of the Laplacian of the aligned
#: crop, and |yaw| (nose offset / inter-ocular distance). On LFW's deep-funneled photos the
#: 1st percentiles are about 73 px, sharpness 40 and |yaw| 0.48 at the 99th.
DEFAULT_QUALITY_GATE: Mapping[str, float] = {"min_size": 40.0, "min_sharpness": 30.0, "max_abs_yaw": 0.45}
CONSENT = "consent"


class GalleryOps(EngineBase):
    # -- galleries ------------------------------------------------------------------
    def create_gallery(
        self,
        actor: Actor,
        name: str,
        *,
        retention_days: int | None = None,
        operating_point: str | None = None,
        quality_gate: Mapping[str, float] | None = None,
        keep_photos: bool = False,
    ) -> Gallery:
        """A gallery pinned to this engine's model, with its calibrated thresholds."""
        op = Op(actor, Operation.GALLERY_CREATE, gallery=name)
        with self._guard(op):
            self._permit(op)
            backend = self.recognizer.backend
            point = backend.thresholds.get(operating_point)
            settings = GallerySettings(
                model_id=backend.model_id,
                dimension=backend.info.dimension,
                retention_days=retention_days if retention_days is not None else self.policy.retention_days_for(name),
                thresholds={p.name: p.threshold for p in backend.thresholds.points.values()},
                operating_point=point.name,
                keep_photos=keep_photos,
                quality_gate=dict(quality_gate if quality_gate is not None else DEFAULT_QUALITY_GATE),
            )
            with self.store.transaction() as tx:
                gallery = tx.create_gallery(name, settings)
                self._commit(tx, op, {"model_id": settings.model_id, "operating_point": point.name,
                                      "retention_days": settings.retention_days})
        return gallery

    def delete_gallery(self, actor: Actor, name: str, *, erase_subjects: bool = False) -> int:
        """Delete a gallery; with subjects in it, only if ``erase_subjects`` (they are erased). Returns
        how many subjects were erased."""
        op = Op(actor, Operation.GALLERY_DELETE, gallery=name)
        with self._guard(op):
            self._permit(op)
            refs = [s.external_ref for s in self.store.list_subjects(name)] if erase_subjects else []
            with self.store.transaction() as tx:
                count = self.store.gallery_stats(name).subjects
                tx.delete_gallery(name, cascade=erase_subjects)
                purged = purge_answers(tx, refs)
                self._commit(tx, op, {"subjects_erased": count, "replays_purged": purged})
        return count

    def change_gallery_model(self, actor: Actor, name: str) -> tuple[Gallery, int]:
        """Pin gallery ``name`` to this engine's model; returns it and the number of templates deleted.

        Templates of two models cannot be compared, so every template of the gallery is
        deleted in the same transaction (subjects, their consents and the ledger stay)
        and the new model's calibrated thresholds replace the old ones (same operating
        point name when the new model has it). Re-enroll the subjects from their photos
        afterwards: ``faceledger enroll GALLERY --folder DIR``.
        """
        op = Op(actor, Operation.GALLERY_MODEL_CHANGE, gallery=name)
        with self._guard(op):
            self._permit(op)
            backend = self.recognizer.backend
            with self.store.transaction() as tx:
                old = tx.get_gallery(name)
                if old.model_id == backend.model_id:
                    raise ConflictError(f"gallery '{name}' already uses model '{backend.model_id}'", gallery=name)
                keep = old.operating_point if old.operating_point in backend.thresholds.points else None
                point = backend.thresholds.get(keep)
                deleted = tx.set_gallery_model(name, backend.model_id, backend.info.dimension)
                gallery = tx.update_gallery(
                    name, thresholds={p.name: p.threshold for p in backend.thresholds.points.values()},
                    operating_point=point.name)
                self._commit(tx, op, {"from_model": old.model_id, "model_id": backend.model_id,
                                      "operating_point": point.name, "templates_deleted": deleted})
        return gallery, deleted

    def list_galleries(self, actor: Actor) -> list[Gallery]:
        op = Op(actor, Operation.GALLERY_LIST)
        with self._guard(op):
            self._permit(op)
            return self.store.list_galleries()

    def gallery(self, actor: Actor, name: str) -> Gallery:
        """One gallery's settings (:class:`NotFoundError` if there is none of that name)."""
        op = Op(actor, Operation.GALLERY_LIST, gallery=name)
        with self._guard(op):
            self._permit(op)
            return self.store.get_gallery(name)

    def gallery_stats(self, actor: Actor, name: str) -> GalleryStats:
        """How many subjects and templates a gallery holds."""
        op = Op(actor, Operation.GALLERY_LIST, gallery=name)
        with self._guard(op):
            self._permit(op)
            return self.store.gallery_stats(name)

    def list_subjects(self, actor: Actor, gallery: str) -> list[Subject]:
        op = Op(actor, Operation.SUBJECT_LIST, gallery=gallery)
        with self._guard(op):
            self._permit(op)
            return self.store.list_subjects(gallery)

    # -- consent --------------------------------------------------------------------
    def record_consent(self, actor: Actor, record: ConsentRecord | ConsentRequest) -> ConsentRecord:
        """Store a consent: a :class:`ConsentRequest` (built here with the engine's clock and the
        actor as defaults) or a ready :class:`ConsentRecord`; validated against the clock, the
        policy's purposes and legal bases, and the rules for subject references. A second active
        consent for the same subject and purpose is refused unless it names the one it renews
        (``supersedes``): that one is then marked superseded in the same transaction."""
        op = Op(actor, Operation.CONSENT_RECORD, gallery=record.gallery, subject_ref=_loggable(record.subject_ref),
                purpose=record.purpose)
        with self._guard(op):
            self._permit(op)
            if isinstance(record, ConsentRequest):
                record = record.build(self.now(), actor.id)
            check_subject_ref(record.subject_ref)
            check_purpose(self.policy, record.purpose)
            validate_new_consent(record, self.now(), self.policy.legal_bases)
            with self.store.transaction() as tx:
                tx.get_gallery(record.gallery)
                _refuse_existing(tx, record.id)
                subject_id = _subject_id(tx, record.gallery, record.subject_ref)
                renewed = check_supersession(_consents(tx, record.gallery, record.subject_ref), record, self.now())
                if renewed is not None:
                    tx.put_record(CONSENT, renewed.id, renewed.to_dict(), gallery=record.gallery, subject_id=subject_id)
                tx.put_record(CONSENT, record.id, record.to_dict(), gallery=record.gallery, subject_id=subject_id)
                self._commit(tx, op, {"consent_id": record.id, "legal_basis": record.legal_basis.value,
                                      "method": record.method.value, "notice_version": record.notice_version,
                                      "expires_at": record.to_dict()["expires_at"],
                                      "supersedes": record.supersedes})
        return record

    def consents(self, actor: Actor, gallery: str, subject_ref: str | None = None) -> list[ConsentRecord]:
        op = Op(actor, Operation.CONSENT_LIST, gallery=gallery, subject_ref=subject_ref)
        with self._guard(op):
            self._permit(op)
            return _consents(self.store, gallery, subject_ref)

    def withdraw_consent(self, actor: Actor, gallery: str, subject_ref: str) -> int:
        """Withdraw every consent of the subject and erase it at once. Returns templates erased."""
        op = Op(actor, Operation.CONSENT_WITHDRAW, gallery=gallery, subject_ref=subject_ref)
        with self._guard(op):
            self._permit(op)
            now = self.now()
            with self.store.transaction() as tx:
                records = [r for r in _consents(tx, gallery, subject_ref) if r.withdrawn_at is None]
                if not records:
                    raise NotFoundError(f"no active consent of '{subject_ref}' in gallery '{gallery}'")
                for r in records:
                    tx.put_record(CONSENT, r.id, withdraw(r, now).to_dict(), gallery=gallery)
                self._commit(tx, op, {"consent_ids": [r.id for r in records]})
                erased = self._erase_in(tx, actor, gallery, subject_ref, "consent_withdrawn")
        return erased

    # -- enrollment -----------------------------------------------------------------
    def enroll(
        self,
        actor: Actor,
        gallery: str,
        subject_ref: str,
        photos: Sequence[ImageSource],
        *,
        purpose: str,
        display_name: str | None = None,
        face: FaceChoice | Sequence[FaceChoice] = None,
    ) -> EnrollResult:
        """Enroll ``subject_ref`` from ``photos``: a valid consent for ``purpose`` is required,
        and every photo must pass the gallery's quality gate (all or nothing).
        ``face`` chooses the face of every photo, or (a list) of each photo in turn; a photo
        with several faces and none chosen is refused, its rejection listing the faces' boxes.
        Re-enrolling a photo already stored for the subject adds nothing."""
        op = Op(actor, Operation.ENROLL, gallery=gallery, subject_ref=_loggable(subject_ref), purpose=purpose)
        with self._guard(op):
            self._permit(op)
            check_subject_ref(subject_ref)
            op.purpose = check_purpose(self.policy, purpose)
            g = self.store.get_gallery(gallery)
            self._check_model(g)
            # Refuse before any face is processed when there is no consent at all.
            require_valid_consent(_consents(self.store, gallery, subject_ref), self.now(), op.purpose, gallery)
            templates = self._templates_for(op, g, photos, face)
            with self.store.transaction() as tx:
                consent = require_valid_consent(_consents(tx, gallery, subject_ref), self.now(), op.purpose, gallery)
                try:
                    subject = tx.find_subject(gallery, subject_ref)
                except NotFoundError:
                    subject = tx.add_subject(gallery, subject_ref, display_name)
                before = tx.get_subject(subject.id).template_count
                stored = [tx.add_template(subject.id, t) for t in templates]
                added = tx.get_subject(subject.id).template_count - before
                tx.put_record(CONSENT, consent.id, consent.to_dict(), gallery=gallery, subject_id=subject.id)
                row = self._commit(tx, op, {"subject_id": subject.id, "consent_id": consent.id,
                                            "templates_added": added, "templates": [s.id for s in stored],
                                            "model_id": g.model_id})
        return EnrollResult(gallery, subject_ref, subject.id, added, len(templates) - added, row.seq)

    def _templates_for(self, op: Op, gallery: Gallery, photos: Sequence[ImageSource],
                       face: FaceChoice | Sequence[FaceChoice]) -> list[NewTemplate]:
        if not photos:
            raise EnrollmentRejectedError("enrollment needs at least one photo", rejections=[])
        choices = list(face) if isinstance(face, (list, tuple)) else [face] * len(photos)
        if len(choices) != len(photos):
            raise FaceSelectionError(f"{len(choices)} face choices for {len(photos)} photos: give one per photo")
        rec, gate = self.recognizer, {**DEFAULT_QUALITY_GATE, **gallery.quality_gate}
        templates, rejections = [], []
        for i, photo in enumerate(photos):
            try:
                image = rec.load(photo, for_search=True)
                op.inputs[f"photo_{i}"] = image.sha256
                # Enrollment keeps the strict rule: one face, or a face chosen explicitly.
                pick = choices[i]
                chosen = choose_face(rec.detect(image), "only" if pick is None else pick, *image.full_size)
                problem = gate_problem(chosen, gate)
                if problem:
                    rejections.append({"photo": i + 1, "reason": problem})
                    continue
                t = rec.embed(image, [chosen])[0]
                photo_bytes = photo if (gallery.keep_photos and isinstance(photo, bytes)) else None
                templates.append(NewTemplate(t.vector, t.model_id, image.sha256, _quality(chosen), photo_bytes,
                                             crop=face_crop(image.rgb, chosen)))
            except FaceLedgerError as exc:
                rejections.append({"photo": i + 1, "reason": f"{exc.code}: {exc.message}", "code": exc.code,
                                   **({"boxes": exc.details["boxes"]} if "boxes" in exc.details else {})})
        if rejections:
            text = "; ".join(f"photo {r['photo']}: {r['reason']}" for r in rejections)
            raise EnrollmentRejectedError(f"enrollment refused, nothing stored ({text})", rejections=rejections)
        return templates

    # -- erasure ----------------------------------------------------------------------
    def erase_subject(self, actor: Actor, gallery: str, subject_ref: str, *, reason: str = "erasure_request") -> int:
        """Erase a subject: templates, photos, index entries and its data key. Returns templates erased."""
        op = Op(actor, Operation.ERASE, gallery=gallery, subject_ref=subject_ref)
        with self._guard(op):
            self._permit(op)
            with self.store.transaction() as tx:
                return self._erase_in(tx, actor, gallery, subject_ref, reason)

    remove_subject = erase_subject

    def _erase_in(self, tx: Any, actor: Actor, gallery: str, subject_ref: str, reason: str) -> int:
        subject = tx.find_subject(gallery, subject_ref)
        count = subject.template_count
        tx.remove_subject(subject.id)
        purged = purge_answers(tx, [subject_ref])
        evidence = self._purge_evidence(tx, self.now(), subject_ref, gallery)  # type: ignore[attr-defined]
        op = Op(actor, Operation.ERASE, gallery=gallery, subject_ref=subject_ref)
        self._commit(tx, op, {"reason": reason, "subject_id": subject.id, "templates_erased": count,
                              "data_key_destroyed": True, "replays_purged": purged, "evidence_purged": evidence})
        return count

    def run_retention(self, actor: Actor, *, dry_run: bool = False) -> RetentionPlan:
        """Erase every subject whose consent ended or whose retention period elapsed."""
        op = Op(actor, Operation.RETENTION_RUN)
        with self._guard(op):
            self._permit(op)
            at = self.now()
            subjects = [SubjectInfo(g.name, s.external_ref, s.created_at)
                        for g in self.store.list_galleries() for s in self.store.list_subjects(g.name)]
            consents = [c for g in self.store.list_galleries() for c in _consents(self.store, g.name, None)]
            plan = plan_retention(subjects, consents, self.policy, at)
            with self.store.transaction() as tx:
                if not dry_run:
                    for item in plan.items:
                        self._erase_in(tx, actor, item.gallery, item.subject_ref,
                                       "+".join(r.value for r in item.reasons))
                evidence = 0 if dry_run else self._purge_evidence(tx, at)  # type: ignore[attr-defined]
                self._commit(tx, op, {"dry_run": dry_run, "due": len(plan.items), "kept": plan.kept,
                                      "evidence_purged": evidence})
        return plan

    # -- a subject's enrolled faces --------------------------------------------------------
    def subject_faces(self, actor: Actor, gallery: str, subject_ref: str) -> list[bytes]:
        """The enrolled face crops of a subject (JPEG, one per template that kept one), so the people
        who enroll and administer a gallery can see who is in it. Each look is ledgered."""
        op = Op(actor, Operation.SUBJECT_FACES, gallery=gallery, subject_ref=subject_ref)
        with self._guard(op):
            self._permit(op)
            subject = self.store.find_subject(gallery, subject_ref)
            crops = [c for t in self.store.list_templates(subject.id) if (c := self.store.get_crop(t.id))]
            self._log(op, "ok", {"crops": len(crops)})
        return crops

    # -- data-subject access ---------------------------------------------------------------
    def export_subject(self, actor: Actor, gallery: str, subject_ref: str) -> dict[str, Any]:
        """Everything held about a subject (never its templates' vectors), as JSON-able data."""
        op = Op(actor, Operation.EXPORT, gallery=gallery, subject_ref=subject_ref)
        with self._guard(op):
            self._permit(op)
            templates: list[dict[str, Any]] = []
            try:
                subject = self.store.find_subject(gallery, subject_ref)
                for t in self.store.list_templates(subject.id):
                    templates.append({"id": t.id, "gallery": gallery, "created_at": t.created_at.isoformat(),
                                      "source_sha256": t.source_sha256, "has_photo": t.has_photo,
                                      "model_id": self.store.get_gallery(gallery).model_id})
            except NotFoundError:
                pass
            consents = _consents(self.store, gallery, subject_ref)
            entries = (LedgerEntry.from_row(r) for r in self.store.iter_ledger())
            export = subject_export(subject_ref, consents, templates, entries, self.policy, self.now())
            self._log(op, "ok", {"consents": len(consents), "templates": len(templates)})
        return export


def gate_problem(face: Face, gate: Mapping[str, float]) -> str | None:
    """Why ``face`` fails the quality ``gate``, or None."""
    q = face.quality
    if q is None:
        return "no quality measure"
    if q.size < gate["min_size"]:
        return f"face too small ({q.size:.0f} px wide, minimum {gate['min_size']:.0f})"
    if not math.isnan(q.sharpness) and q.sharpness < gate["min_sharpness"]:
        return f"face too blurred (sharpness {q.sharpness:.0f}, minimum {gate['min_sharpness']:.0f})"
    if not math.isnan(q.yaw) and abs(q.yaw) > gate["max_abs_yaw"]:
        return f"face turned too far (yaw {q.yaw:+.2f}, limit {gate['max_abs_yaw']:.2f})"
    return None


def _quality(face: Face) -> dict[str, float | None]:
    q = face.quality
    if q is None:
        return {}
    return {k: (None if math.isnan(v) else round(float(v), 4))
            for k, v in {"size": q.size, "sharpness": q.sharpness, "yaw": q.yaw, "roll": q.roll}.items()}


def _consents(reader: Any, gallery: str, subject_ref: str | None) -> list[ConsentRecord]:
    records = [consent_from_dict(r.data) for r in reader.list_records(CONSENT, gallery=gallery)]
    return [r for r in records if subject_ref is None or r.subject_ref == subject_ref]


def _refuse_existing(tx: Any, consent_id: str) -> None:
    """A consent record is never rewritten (that could un-withdraw it): new facts, new record."""
    try:
        tx.get_record(CONSENT, consent_id)
    except NotFoundError:
        return
    raise ConflictError(f"consent record '{consent_id}' already exists; record a new one with another id")


def _loggable(subject_ref: object) -> str | None:
    """``subject_ref`` for a ledger entry, or None when it is not a valid reference (the refusal's
    message quotes it, escaped): invisible or control characters never reach the ledger's fields."""
    try:
        return check_subject_ref(subject_ref)
    except FaceLedgerError:
        return None


def _subject_id(tx: Any, gallery: str, subject_ref: str) -> int | None:
    try:
        return tx.find_subject(gallery, subject_ref).id
    except NotFoundError:
        return None

