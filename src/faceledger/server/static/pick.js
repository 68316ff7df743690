// Several faces in a photo: instead of sending the user back with an error, show the photo with its
// faces numbered and let them click the one to use (Verify, Enroll, Identify).

import { $, api, h, say } from "./api.js";
import { facesFigure } from "./faces.js";

async function detectFaces(file) {
  const f = new FormData();
  f.append("photo", file);
  return (await api("POST", "/v1/detect", { form: f })).faces;
}

// Verify refused with multiple_faces: find which photo holds several faces and offer them.
export async function offerVerifyFaces(form) {
  const box = $("#verify-pick");
  box.replaceChildren();
  for (const [side, input] of [["a", "#verify-a"], ["b", "#verify-b"]]) {
    const field = form.elements[`face_${side}`];
    const file = $(input).files[0];
    if (!file || field.value.trim()) continue;
    const faces = await detectFaces(file);
    if (faces.length < 2) continue;
    box.append(h("p", { class: "pick-help" }, `Photo ${side.toUpperCase()} shows ${faces.length} faces: click the one to compare.`),
      facesFigure(file, faces, { id: `verify-pick-${side}`, onPick: (i) => {
        field.value = String(i);
        box.replaceChildren();
        form.requestSubmit();
      } }));
  }
}

// Enrollment refused because photos hold several faces: one picker per such photo; when each has a
// pick, enroll again with one choice per photo ("faces").
export function offerEnrollFaces(form, rejections, picks) {
  const box = $("#enroll-pick");
  box.replaceChildren();
  const files = Array.from(form.elements.photos.files);
  const crowded = rejections.filter((r) => r.code === "multiple_faces" && Array.isArray(r.boxes));
  if (!crowded.length || crowded.length !== rejections.length) return;
  crowded.forEach((r) => {
    const file = files[r.photo - 1];
    if (!file) return;
    box.append(h("p", { class: "pick-help" }, `Photo ${r.photo} (${file.name}) shows ${r.boxes.length} faces: click the subject's face.`),
      facesFigure(file, r.boxes, { id: `enroll-pick-${r.photo}`, chosen: picks.get(r.photo) ?? null, onPick: (i) => {
        picks.set(r.photo, i);
        if (crowded.every((c) => picks.has(c.photo))) { box.replaceChildren(); form.requestSubmit(); }
        else offerEnrollFaces(form, rejections, picks);
      } }));
  });
}

// The per-photo choices of an enrollment form ("" for photos with one face), or null if none was picked.
export function enrollChoices(form, picks) {
  if (!picks.size) return null;
  return Array.from(form.elements.photos.files).map((_, i) => (picks.has(i + 1) ? String(picks.get(i + 1)) : ""));
}

// Identify: as soon as a probe photo is chosen, show its faces; with several, the user may click one to
// search only that face (default: every face).
export async function offerIdentifyFaces(form) {
  const box = $("#identify-pick");
  const field = form.elements.face;
  field.value = "";
  box.replaceChildren();
  const file = form.elements.photo.files[0];
  if (!file) return;
  let faces;
  try { faces = await detectFaces(file); } catch (e) { return; }    // the search itself will say what is wrong
  if (faces.length < 2) return;
  const draw = (chosen) => {
    box.replaceChildren(h("p", { class: "pick-help" }, chosen === null
      ? `${faces.length} faces: every face is searched, or click one to search only it.`
      : `Only face #${chosen} will be searched.`),
    facesFigure(file, faces, { id: "identify-pick-figure", chosen, onPick: (i) => { field.value = String(i); draw(i); } }),
    chosen === null ? "" : h("button", { type: "button", class: "small", onclick: () => { field.value = ""; draw(null); } }, "Search every face"));
  };
  draw(null);
  say("identify-msg", "", "");
}
