// The page's key ring: several API keys held in this browser tab (session storage only), so an
// admin setting FaceLedger up can act as the enroller, the investigator or the reviewer in turn
// without signing out. Every request still carries exactly one key; the service decides.

import { $, h, state } from "./api.js";

const RING = "faceledger.keyRing";

/** The keys held: [{token, actor, role, key_id}]. */
export function ring() {
  try {
    const list = JSON.parse(sessionStorage.getItem(RING) || "[]");
    return Array.isArray(list) ? list.filter((k) => k && typeof k.token === "string") : [];
  } catch (e) {
    return [];
  }
}

function save(list) {
  sessionStorage.setItem(RING, JSON.stringify(list));
  draw();
}

/** Hold a key (replacing an entry with the same key id). */
export function keep(entry) {
  save([...ring().filter((k) => k.key_id !== entry.key_id), entry]);
}

/** Stop holding a key (revoked, or refused by the service). */
export function forget(keyId) {
  save(ring().filter((k) => k.key_id !== keyId));
}

export function clearRing() {
  sessionStorage.removeItem(RING);
  draw();
}

let onSwitch = null;

/** The key menu in the header: shown when more than one key is held. */
export function draw() {
  const sel = $("#switch-key");
  if (!sel) return;
  const keys = ring();
  sel.replaceChildren(...keys.map((k) => h("option", { value: k.key_id }, `${k.actor} · ${k.role}`)));
  if (state.me) sel.value = state.me.key_id;
  $("#switch-box").hidden = keys.length < 2;
}

export function wireRing(switchTo) {
  onSwitch = switchTo;
  $("#switch-key").addEventListener("change", (ev) => {
    const entry = ring().find((k) => k.key_id === ev.target.value);
    if (entry && onSwitch) onSwitch(entry);
  });
}
