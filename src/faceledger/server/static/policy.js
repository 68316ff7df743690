// The policy step of the Setup tab: the policy in force (GET /v1/policy) and changing it through the
// Engine (PUT /v1/policy: validated, ledgered as policy_change with what changed). A few common changes
// have their own fields; the whole policy can be edited as TOML.

import { $, api, can, guarded, h, say } from "./api.js";

const bare = (k) => (/^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k));
const isTable = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

function tomlValue(v) {
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(", ")}]`;
  if (typeof v === "string") return JSON.stringify(v);     // a JSON string is a valid TOML basic string
  return String(v);
}

/** The policy's JSON layout (as GET /v1/policy gives it) written back as policy.toml text. */
export function toToml(policy) {
  const out = [];
  const write = (prefix, obj) => {
    const scalars = Object.entries(obj).filter(([, v]) => !isTable(v) && v !== null && v !== undefined);
    const tables = Object.entries(obj).filter(([, v]) => isTable(v));
    if (prefix && (scalars.length || !tables.length)) out.push(`[${prefix}]`);
    scalars.forEach(([k, v]) => out.push(`${bare(k)} = ${tomlValue(v)}`));
    if (scalars.length || (prefix && !tables.length)) out.push("");
    tables.forEach(([k, v]) => write(prefix ? `${prefix}.${bare(k)}` : bare(k), v));
  };
  write("", policy);
  return out.join("\n");
}

let current = null;      // the last GET /v1/policy answer
let onChanged = null;

async function put(toml) {
  const r = await api("PUT", "/v1/policy", { json: { toml } });
  current = r;
  if (onChanged) await onChanged();
  say("setup-msg", "ok", `Policy changed and ledgered (policy_change); digest ${r.digest.slice(0, 12)}….`);
}

async function onQuick(ev) {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const p = structuredClone(current.policy);
  p.identification = { ...(p.identification || {}), enabled: f.get("identification") === "on" };
  p.purposes = { ...(p.purposes || {}), allowed: String(f.get("purposes")).split(",").map((s) => s.trim()).filter(Boolean) };
  p.review = { ...(p.review || {}), required_reviewers: Number(f.get("reviewers") || 1) };
  await guarded("setup-msg", () => put(toToml(p)));
}

async function onToml(ev) {
  ev.preventDefault();
  await guarded("setup-msg", () => put(new FormData(ev.target).get("toml")));
}

/** Draw the policy step's change forms (admins with policy_show / policy_change). */
export async function loadPolicy() {
  const box = $("#setup-policy-change");
  if (!can("policy_show") && !can("policy_change")) { box.replaceChildren(); return; }
  current = await api("GET", "/v1/policy");
  const p = current.policy;
  const where = h("p", { class: "fine", id: "policy-source" }, `In force: ${current.source} · digest ${current.digest.slice(0, 12)}…`);
  if (!can("policy_change")) { box.replaceChildren(where); return; }
  const quick = h("form", { id: "policy-quick-form", class: "form" },
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "identification",
      ...(p.identification && p.identification.enabled ? { checked: true } : {}) }),
    "Allow 1:N identification (each search still needs an authorization; results are leads for review)"),
    h("div", { class: "row" },
      h("label", {}, "Purposes allowed (comma-separated)", h("input", { name: "purposes", value: ((p.purposes || {}).allowed || []).join(", ") })),
      h("label", {}, "Reviewers per lead", h("input", { name: "reviewers", type: "number", min: 1, max: 5,
        value: (p.review || {}).required_reviewers || 1 }))),
    h("button", { type: "submit" }, "Change the policy"));
  quick.addEventListener("submit", onQuick);
  const full = h("form", { id: "policy-toml-form", class: "form" },
    h("textarea", { name: "toml", rows: 14, spellcheck: "false", class: "toml" }),
    h("button", { type: "submit" }, "Replace the policy with this TOML"));
  full.elements.toml.value = toToml(p);
  full.addEventListener("submit", onToml);
  box.replaceChildren(where, quick, h("details", {}, h("summary", {}, "Edit the whole policy (TOML)"), full));
}

export function wirePolicy(changed) {
  onChanged = changed;
}
