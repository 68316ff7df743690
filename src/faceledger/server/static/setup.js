// The Setup tab: the first-run path for an admin, from a fresh data directory to a first reviewed
// lead — a key for each person and role (held in this page to switch roles), the policy, a gallery,
// identification under an authorization. Every step calls the API, so every step is ledgered.

import { $, api, day, guarded, h, say, state } from "./api.js";
import { createKey, otherAdmins } from "./admin.js";
import { loadPolicy } from "./policy.js";

const ROLES = [
  ["enroller", "records consent and enrolls people", "carl"],
  ["verifier", "checks two photos (1:1)", "vera"],
  ["investigator", "searches a gallery (1:N) under an authorization", "ines"],
  ["reviewer", "reviews the leads a search gives", "rita"],
  ["auditor", "verifies the ledger and reads reports", "aud"],
];

let afterGallery = null;

function mark(id, done, text) {
  const el = $(`#${id} .status`);
  el.className = `status ${done ? "done" : "todo"}`;
  el.textContent = done ? `✓ ${text}` : `○ ${text}`;
}

export async function loadSetup() {
  const [keys, galleries, auths] = await Promise.all([api("GET", "/v1/keys"), api("GET", "/v1/galleries"),
    api("GET", "/v1/authorizations")]);
  const active = keys.filter((k) => k.active);
  const roles = new Set(active.map((k) => k.role));
  const missing = ROLES.filter(([r]) => !roles.has(r)).map(([r]) => r);
  mark("step-keys", !missing.length, missing.length ? `no key yet for: ${missing.join(", ")}` : "a key for every role");
  $$rows(active);
  drawPolicy();
  await loadPolicy().catch(() => {});
  mark("step-policy", true, state.me.identification_enabled ? "identification enabled" : "identification off (the safe default)");
  mark("step-gallery", galleries.length > 0, galleries.length ? `${galleries.length} gallery(ies): ${galleries.map((g) => g.name).join(", ")}` : "no gallery yet");
  $("#setup-auth-form select[name=gallery]").replaceChildren(...galleries.map((g) => h("option", { value: g.name }, g.name)));
  const now = Date.now();
  const valid = auths.filter((a) => !a.revoked_at && Date.parse(a.valid_until) > now);
  const ready = state.me.identification_enabled && valid.length > 0;
  mark("step-identify", ready, !state.me.identification_enabled ? "the policy keeps identification off"
    : valid.length ? `${valid.length} valid authorization(s): ${valid.map((a) => `${a.reference} (${a.galleries.join(", ")}, until ${day(a.valid_until)})`).join("; ")}`
      : "no valid authorization yet");
  const admins = otherAdmins(null, keys);
  $("#setup-admin-note").textContent = admins.length > 1 ? `${admins.length} active admin keys.`
    : "This is the only active admin key: keep it safe. Revoking it (Admin tab) asks first; " +
      "`faceledger serve --new-admin-key` on the server makes a new one.";
}

// Fill each role's actor field with a suggestion, or say who already holds a key in it.
function $$rows(active) {
  ROLES.forEach(([role]) => {
    const holders = active.filter((k) => k.role === role).map((k) => k.actor);
    $(`#setup-holders-${role}`).textContent = holders.length ? `key held by ${holders.join(", ")}` : "";
  });
}

function drawPolicy() {
  const me = state.me;
  const org = me.organisation || {};
  const rows = [["organisation", org.name || "(not named)"], ["purposes allowed", me.purposes.join(", ")],
    ["1:N identification", me.identification_enabled ? "enabled (under an authorization, results are leads for review)" : "off"],
    ["reviewers per lead", String(me.required_reviewers ?? 1)]];
  $("#setup-policy").replaceChildren(h("table", { class: "table" }, h("tbody", {},
    rows.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v))))));
}

async function onKeys(ev) {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const out = $("#setup-tokens");
  out.replaceChildren();
  await guarded("setup-msg", async () => {
    const made = [];
    for (const [role] of ROLES) {
      const actor = String(f.get(role) || "").trim();
      if (actor) made.push(await createKey(actor, role, "setup"));
    }
    if (!made.length) { say("setup-msg", "error", "Name at least one person."); return; }
    out.append(h("p", {}, "Copy each key now and hand it to its holder: it is not shown again. " +
      "All of them are also held in this page: switch between them with the key menu at the top."),
    h("table", { class: "table", id: "setup-token-table" }, h("tbody", {}, made.map((k) =>
      h("tr", {}, h("td", {}, `${k.actor} · ${k.role}`), h("td", {}, h("code", { class: "token-value" }, k.token)))))));
    ev.target.reset();
    await loadSetup();
    say("setup-msg", "ok", `${made.length} key(s) created (ledgered).`);
  });
}

async function onGallery(ev) {
  ev.preventDefault();
  const name = new FormData(ev.target).get("name");
  await guarded("setup-msg", async () => {
    const g = await api("POST", "/v1/galleries", { json: { name } });
    ev.target.reset();
    if (afterGallery) await afterGallery();
    await loadSetup();
    say("setup-msg", "ok", `Gallery ${g.name} created (model ${g.model_id}, ${g.operating_point}).`);
  });
}

async function onAuthorization(ev) {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const body = { kind: f.get("kind"), reference: f.get("reference"), issuer: f.get("issuer"),
    galleries: [f.get("gallery")], purposes: [f.get("purpose")], valid_days: Number(f.get("valid_days") || 30) };
  await guarded("setup-msg", async () => {
    const a = await api("POST", "/v1/authorizations", { json: body });
    ev.target.reset();
    await loadSetup();
    say("setup-msg", "ok", `Authorization ${a.reference} recorded for ${a.galleries.join(", ")}, valid until ${day(a.valid_until)}.`);
  });
}

export function wireSetup(onGalleryCreated) {
  afterGallery = onGalleryCreated;
  const rows = $("#setup-key-rows");
  rows.replaceChildren(...ROLES.map(([role, what, example]) => h("div", { class: "key-row" },
    h("label", {}, `${role}: ${what}`, h("input", { name: role, placeholder: `e.g. ${example}`, autocomplete: "off" })),
    h("span", { class: "fine", id: `setup-holders-${role}` }))));
  $("#setup-keys-form").addEventListener("submit", onKeys);
  $("#setup-gallery-form").addEventListener("submit", onGallery);
  $("#setup-auth-form").addEventListener("submit", onAuthorization);
}
