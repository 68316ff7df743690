// FaceLedger web page: administration — API keys (kept in the page's key ring when created here),
// authorizations for identification, the retention job; and a warning before the last admin key goes.

import { $, api, day, guarded, h, say, state } from "./api.js";
import { forget, keep } from "./ring.js";

export async function loadAdmin() {
  const ops = state.me.operations;
  if (ops.includes("key_list") || ops.includes("key_change")) await loadKeys();
  if (ops.includes("authorization_list")) await loadAuthorizations();
}

export async function loadKeys() {
  const keys = await api("GET", "/v1/keys");
  known = keys;
  $("#keys-table tbody").replaceChildren(...keys.map((k) => h("tr", {},
    h("td", {}, h("code", {}, k.key_id)), h("td", {}, k.actor), h("td", {}, k.role), h("td", {}, k.label || ""),
    h("td", {}, day(k.created_at)), h("td", {}, k.active ? "active" : `revoked ${day(k.revoked_at)}`),
    h("td", {}, k.active ? h("button", { type: "button", class: "small danger", onclick: () => revokeKey(k.key_id) }, "Revoke") : ""))));
}

async function loadAuthorizations() {
  const auths = await api("GET", "/v1/authorizations");
  $("#auth-table tbody").replaceChildren(...auths.map((a) => h("tr", {},
    h("td", {}, a.kind), h("td", {}, a.reference), h("td", {}, a.issuer), h("td", {}, a.galleries.join(", ")),
    h("td", {}, a.purposes.join(", ")), h("td", {}, day(a.valid_until)), h("td", {}, a.revoked_at ? "revoked" : "valid"),
    h("td", {}, a.revoked_at ? "" : h("button", { type: "button", class: "small danger", onclick: () => revokeAuth(a.id) }, "Revoke")))));
}

/** Create a key and keep it in this page's key ring (its token is shown once by the service). */
export async function createKey(actor, role, label) {
  const body = { actor, role };
  if (label) body.label = label;
  const k = await api("POST", "/v1/keys", { json: body });
  keep({ token: k.token, actor: k.actor, role: k.role, key_id: k.key_id });
  return k;
}

async function onCreateKey(ev) {
  ev.preventDefault();
  const f = new FormData(ev.target);
  await guarded("keys-msg", async () => {
    const k = await createKey(f.get("actor"), f.get("role"), f.get("label"));
    const box = $("#new-token");
    box.replaceChildren(h("p", {}, `Key for ${k.actor} (${k.role}) — copy it now, it is not shown again:`),
      h("code", { id: "new-token-value" }, k.token),
      h("p", { class: "fine" }, "It is also kept in this page: switch to it from the key menu at the top."));
    box.hidden = false;
    say("keys-msg", "ok", `Key ${k.key_id} created (ledgered).`);
    await loadKeys();
  });
}

let known = [];    // the keys as last listed

/** Active admin keys other than ``id``: none left means revoking ``id`` locks every admin out. */
export function otherAdmins(id, keys = known) {
  return keys.filter((k) => k.active && k.role === "admin" && k.key_id !== id);
}

function revokeKey(id) {
  const key = known.find((k) => k.key_id === id);
  const box = $("#revoke-warning");
  box.hidden = true;
  if (key && key.role === "admin" && !otherAdmins(id).length) {
    box.replaceChildren(
      h("p", {}, h("strong", {}, `${id} is the last active admin key. `),
        "Without an admin key nobody can create or revoke keys, record authorizations or run retention from " +
        "the page or the API; the only way back is `faceledger serve --new-admin-key` on the server."),
      h("div", { class: "toolbar" },
        h("button", { type: "button", class: "danger", id: "revoke-last-admin", onclick: () => { box.hidden = true; doRevoke(id); } },
          "Revoke the last admin key"),
        h("button", { type: "button", id: "revoke-cancel", onclick: () => { box.hidden = true; } }, "Keep it")));
    box.hidden = false;
    box.scrollIntoView({ block: "center" });
    return;
  }
  doRevoke(id);
}

async function doRevoke(id) {
  await guarded("keys-msg", async () => {
    await api("POST", `/v1/keys/${encodeURIComponent(id)}/revoke`);
    forget(id);
    if (state.me && state.me.key_id === id) { window.dispatchEvent(new CustomEvent("faceledger:key-gone")); return; }
    say("keys-msg", "ok", `Key ${id} revoked.`);
    await loadKeys();
  });
}

async function onAuthorization(ev) {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const list = (name) => String(f.get(name)).split(",").map((s) => s.trim()).filter(Boolean);
  const body = { kind: f.get("kind"), reference: f.get("reference"), issuer: f.get("issuer"),
    galleries: list("galleries"), purposes: list("purposes"), valid_days: Number(f.get("valid_days") || 30) };
  await guarded("auth-msg", async () => {
    const a = await api("POST", "/v1/authorizations", { json: body });
    say("auth-msg", "ok", `Authorization ${a.reference} recorded, valid until ${day(a.valid_until)}.`);
    await loadAuthorizations();
  });
}

async function revokeAuth(id) {
  await guarded("auth-msg", async () => {
    await api("POST", `/v1/authorizations/${encodeURIComponent(id)}/revoke`);
    say("auth-msg", "ok", "Authorization revoked.");
    await loadAuthorizations();
  });
}

async function retention(dry) {
  if (!dry && !confirm("Erase every subject whose consent or retention period has ended?")) return;
  await guarded("retention-msg", async () => {
    const r = await api("POST", "/v1/retention/run", { json: { dry_run: dry } });
    const items = r.purge.map((i) => `${i.gallery}/${i.subject_ref} (${i.reasons.join(", ")})`).join("; ");
    say("retention-msg", "ok", `${dry ? "Would erase" : "Erased"} ${r.purge.length} subject(s), ${r.kept} kept. ${items}`);
  });
}

export function wireAdmin() {
  $("#key-form").addEventListener("submit", onCreateKey);
  $("#auth-form").addEventListener("submit", onAuthorization);
  $("#retention-dry").addEventListener("click", () => retention(true));
  $("#retention-run").addEventListener("click", () => retention(false));
}
