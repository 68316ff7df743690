// The Detect view: every face of a photo drawn on it (box, five landmarks, score and quality).

import { $, api, fmt, guarded, h, say } from "./api.js";
import { facesFigure } from "./faces.js";

async function onDetect(ev) {
  ev.preventDefault();
  const form = ev.target;
  const file = $("#detect-photo").files[0];
  const out = $("#detect-result");
  out.replaceChildren();
  const f = new FormData(form);
  if (!f.get("purpose")) f.delete("purpose");
  await guarded("detect-msg", async () => {
    const r = await api("POST", "/v1/detect", { form: f });
    say("detect-msg", "ok", `${r.count} face(s) found (ledgered; nothing kept).`);
    out.append(facesFigure(file, r.faces, { landmarks: true, id: "detect-figure" }));
    if (!r.faces.length) return;
    out.append(h("div", { class: "scroll" }, h("table", { class: "table", id: "detect-table" },
      h("thead", {}, h("tr", {}, ["#", "box x, y, w, h", "score", "size", "sharpness", "yaw", "roll"].map((t) => h("th", {}, t)))),
      h("tbody", {}, r.faces.map((face, i) => {
        const q = face.quality || {};
        return h("tr", {}, h("td", {}, `#${i}`), h("td", {}, [face.box.x, face.box.y, face.box.w, face.box.h].map((v) => Math.round(v)).join(", ")),
          h("td", {}, fmt(face.score, 3)), h("td", {}, fmt(q.size, 0)), h("td", {}, fmt(q.sharpness, 0)),
          h("td", {}, fmt(q.yaw, 2)), h("td", {}, fmt(q.roll, 1)));
      })))));
  });
}

export function wireDetect() {
  $("#detect-form").addEventListener("submit", onDetect);
}
