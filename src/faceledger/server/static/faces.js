// Faces drawn over a photo the user chose: boxes, landmarks, and (optionally) a click to pick one.
// The photo is shown from the browser's own copy (a blob: URL); the boxes come from the API, in
// pixels of the upright photo, numbered by face index (0 = best detection score), as the API and
// the CLI number them.

import { h } from "./api.js";

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

// A face from the API ({box: {x, y, w, h}, landmarks}) or a bare box [x, y, w, h] (a refusal's "boxes").
function asFace(f) {
  if (Array.isArray(f)) return { box: { x: f[0], y: f[1], w: f[2], h: f[3] }, landmarks: [] };
  return f;
}

const urls = new WeakMap();
function urlOf(file) {
  if (!urls.has(file)) urls.set(file, URL.createObjectURL(file));
  return urls.get(file);
}

/**
 * A figure: the photo, each face's box numbered by its index, its five landmarks if asked, and,
 * with onPick, a button per face ("Use face #i") and a click on each box to choose it.
 */
export function facesFigure(file, faces, { onPick = null, landmarks = false, chosen = null, caption = null, id = null } = {}) {
  const list = (faces || []).map(asFace);
  const img = h("img", { src: urlOf(file), alt: file.name || "photo" });
  const layer = svg("svg", { class: "faces-layer", preserveAspectRatio: "none" });
  const frame = h("div", { class: `frame faces${onPick ? " pickable" : ""}` }, img, layer);
  img.addEventListener("load", () => {
    const W = img.naturalWidth, H = img.naturalHeight;
    layer.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const stroke = Math.max(2, Math.round(Math.max(W, H) / 300));
    list.forEach((f, i) => {
      const g = svg("g", { class: `face${chosen === i ? " chosen" : ""}`, "data-face": i });
      const rect = svg("rect", { x: f.box.x, y: f.box.y, width: f.box.w, height: f.box.h, "stroke-width": stroke });
      const label = svg("text", { x: f.box.x + stroke, y: Math.max(f.box.y - stroke * 2, stroke * 7),
        "font-size": Math.max(12, stroke * 7) });
      label.textContent = `#${i}`;
      g.append(rect, label);
      if (landmarks) (f.landmarks || []).forEach(([x, y]) => g.append(svg("circle", { cx: x, cy: y, r: stroke * 1.5, class: "mark" })));
      if (onPick) g.addEventListener("click", () => onPick(i));
      layer.append(g);
    });
  });
  const fig = h("figure", { class: "faces-figure", id }, frame);
  if (onPick) {
    fig.append(h("div", { class: "pick-row" }, list.map((_, i) =>
      h("button", { type: "button", class: `small${chosen === i ? " chosen" : ""}`, "data-face": i, onclick: () => onPick(i) }, `Use face #${i}`))));
  }
  fig.append(h("figcaption", {}, caption || file.name || ""));
  return fig;
}

/** The face rectangle of a photo cut out as a small image (a data: URL), for results side by side. */
export async function faceCrop(file, box, size = 112) {
  const img = new Image();
  img.src = urlOf(file);
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = size; canvas.height = size;
  const pad = 0.15 * Math.max(box.w, box.h);
  const side = Math.max(box.w, box.h) + 2 * pad;
  const cx = box.x + box.w / 2, cy = box.y + box.h / 2;
  canvas.getContext("2d").drawImage(img, cx - side / 2, cy - side / 2, side, side, 0, 0, size, size);
  return canvas.toDataURL("image/jpeg", 0.9);
}
