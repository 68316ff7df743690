// FaceLedger web page: plain JavaScript, no build step, nothing loaded from elsewhere.
// Every action calls the /v1 API with the signed-in API key; every refusal is shown as the
// service explains it (problem+json "detail" and "code").

import { $, $$, ApiError, KEY, api, can, day, fmt, guarded, h, refusal, say, state } from "./api.js";
import { loadAdmin, wireAdmin } from "./admin.js";
import { wireDetect } from "./detect.js";
import { clearRing, draw as drawRing, forget, keep, ring, wireRing } from "./ring.js";
import { wirePolicy } from "./policy.js";
import { loadSetup, wireSetup } from "./setup.js";
import { faceCrop } from "./faces.js";
import { enrollChoices, offerEnrollFaces, offerIdentifyFaces, offerVerifyFaces } from "./pick.js";

// -- sign in and navigation -------------------------------------------------------------------------
async function signIn(token) {
  state.token = token;
  try { state.me = await api("GET", "/v1/me"); } catch (e) { state.token = null; throw e; }
  sessionStorage.setItem(KEY, token);
  keep({ token, actor: state.me.actor, role: state.me.role, key_id: state.me.key_id });
  $("#who-text").textContent = `${state.me.actor} · ${state.me.role}`;
  drawRing();
  // Show only what this role may do (the service refuses the rest anyway, and ledgers the refusal).
  $$("[data-ops]").forEach((el) => { el.hidden = !el.dataset.ops.split(" ").some((op) => state.me.operations.includes(op)); });
  $$(".purposes").forEach((sel) => sel.replaceChildren(...state.me.purposes.map((p) => h("option", { value: p }, p))));
  $$("#identify-form .purposes option, #setup-auth-form .purposes option").forEach((o) => { if (o.value === "investigation") o.selected = true; });
  $$("#redact-purpose, .purposes-optional").forEach((sel) => sel.replaceChildren(h("option", { value: "" }, "none"),
    ...state.me.purposes.map((p) => h("option", { value: p }, p))));
  if (state.me.operations.includes("gallery_list")) await loadGalleries().catch(() => {});
  const wanted = location.hash.slice(1);
  const button = wanted && $(`#tabs button[data-tab="${CSS.escape(wanted)}"]`);
  show(button && !button.hidden ? wanted : defaultTab(state.me.operations));
  // Signed in only now that the first tab is shown: a click on a tab meanwhile would be undone by it.
  $("#who").hidden = false;
  $("#tabs").hidden = false;
}

// Switch to another key held in the page; a key the service no longer accepts is dropped.
async function switchTo(entry) {
  const previous = state.token;
  try {
    await signIn(entry.token);
  } catch (e) {
    forget(entry.key_id);
    if (previous) await signIn(previous).catch(() => signOut());
    if (e instanceof ApiError) refusal("switch-msg", e);
  }
}

function defaultTab(ops) {
  const order = [["verify", "verify"], ["enroll", "enroll"], ["identify", "identify"], ["review", "review"],
    ["ledger_export", "ledger"], ["key_create", "setup"], ["key_change", "setup"], ["redact", "redact"]];
  for (const [op, tab] of order) if (ops.includes(op)) return tab;
  return "galleries";
}

function signOut() {
  sessionStorage.removeItem(KEY);
  clearRing();
  state.token = null; state.me = null;
  $("#who").hidden = true; $("#tabs").hidden = true;
  show("signin");
}

// The key in use was revoked from this page: go on with another key held, or sign in again.
async function keyGone() {
  const next = ring()[0];
  if (next) await switchTo(next);
  else signOut();
}

function show(tab) {
  $$("main > section").forEach((s) => { s.hidden = s.id !== tab; });
  $$("#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tab === tab));
  const loaders = { galleries: [loadGalleries, "galleries-msg"], enroll: [loadConsents, "consent-msg"],
    review: [loadLeads, "review-msg"], admin: [loadAdmin, "keys-msg"], setup: [loadSetup, "setup-msg"],
    identify: [loadTargets, "identify-msg"] };
  if (loaders[tab]) {
    const [load, msg] = loaders[tab];
    load().catch((e) => { if (e instanceof ApiError) refusal(msg, e); });
  }
}

// -- verify -------------------------------------------------------------------------------------------
function preview(figId, file, face) {
  const fig = document.getElementById(figId);
  fig.replaceChildren();
  if (!file) return;
  const img = h("img", { src: URL.createObjectURL(file), alt: file.name });
  const wrap = h("div", { class: "frame" }, img);
  img.addEventListener("load", () => {
    if (!face) return;
    const sx = img.clientWidth / img.naturalWidth, sy = img.clientHeight / img.naturalHeight;
    const box = h("div", { class: "facebox" });
    Object.assign(box.style, { left: `${face.box.x * sx}px`, top: `${face.box.y * sy}px`,
      width: `${face.box.w * sx}px`, height: `${face.box.h * sy}px` });
    wrap.append(box);
  });
  fig.append(wrap, h("figcaption", {}, file.name));
}

async function onVerify(ev) {
  ev.preventDefault();
  const form = ev.target;
  $("#verify-result").replaceChildren();
  $("#verify-pick").replaceChildren();
  await guarded("verify-msg", async () => {
    let r;
    try {
      r = await api("POST", "/v1/verify", { form: new FormData(form) });
    } catch (e) {       // several faces: show them and let the user click one, then verify again
      if (e instanceof ApiError && e.problem.code === "multiple_faces") await offerVerifyFaces(form).catch(() => {});
      throw e;
    }
    say("verify-msg", "ok", "Verified and ledgered.");
    $("#verify-result").append(h("div", { class: `verdict ${r.match ? "yes" : "no"}`, id: "verify-verdict" },
      r.match ? "Same person" : "Different people"),
    h("p", {}, `score ${fmt(r.score)} · threshold ${fmt(r.threshold)} (${r.operating_point}) · model ${r.model_id}`));
    preview("verify-prev-a", $("#verify-a").files[0], r.face_a);
    preview("verify-prev-b", $("#verify-b").files[0], r.face_b);
  });
}

// -- redact ---------------------------------------------------------------------------------------------
let redactedUrl = null;

function downloadName(res, fallback) {
  const m = /filename="([^"]+)"/.exec(res.headers.get("content-disposition") || "");
  return m ? m[1] : fallback;
}

async function onRedact(ev) {
  ev.preventDefault();
  const f = new FormData(ev.target);
  if (!f.get("purpose")) f.delete("purpose");
  const out = $("#redact-result");
  out.replaceChildren();
  await guarded("redact-msg", async () => {
    const res = await api("POST", "/v1/redact", { form: f, raw: true });
    const faces = Number(res.headers.get("x-faces-redacted"));
    const obscured = res.headers.get("x-fully-obscured") === "true";
    const name = downloadName(res, "photo_redacted");
    if (redactedUrl) URL.revokeObjectURL(redactedUrl);
    redactedUrl = URL.createObjectURL(await res.blob());
    const seq = res.headers.get("x-ledger-seq");
    if (obscured) say("redact-msg", "error", `Face detection failed: the whole photo was painted over (ledger entry ${seq}).`);
    else say("redact-msg", "ok", `Redacted and ledgered (entry ${seq}); no image was kept.`);
    out.append(h("p", { id: "redact-count" }, `${faces} face(s) redacted${obscured ? " · fully obscured" : ""}`),
      h("figure", { class: "redacted" }, h("img", { id: "redact-img", src: redactedUrl, alt: `redacted ${name}` }),
        h("figcaption", {}, h("a", { id: "redact-download", href: redactedUrl, download: name }, `Download ${name}`))));
  });
}

// -- galleries and subjects -----------------------------------------------------------------------------
async function loadGalleries() {
  state.galleries = await api("GET", "/v1/galleries");
  const body = $("#galleries-table tbody");
  body.replaceChildren(...state.galleries.map((g) => h("tr", {},
    h("td", {}, g.name), h("td", {}, g.model_id), h("td", {}, `${g.operating_point} (${fmt(g.thresholds[g.operating_point])})`),
    h("td", {}, g.subjects), h("td", {}, g.templates), h("td", {}, g.retention_days ?? "–"),
    h("td", {}, h("button", { type: "button", class: "small", onclick: () => loadSubjects(g.name) }, "Subjects")))));
  const names = state.galleries.map((g) => g.name);
  $$("select.galleries").forEach((sel) => {
    const keep = sel.value;
    sel.replaceChildren(...names.map((n) => h("option", { value: n }, n)));
    if (names.includes(keep)) sel.value = keep;
  });
  say("galleries-msg", "", "");
}

async function loadSubjects(gallery) {
  await guarded("galleries-msg", async () => {
    const subjects = await api("GET", `/v1/galleries/${encodeURIComponent(gallery)}/subjects`);
    $("#subjects-gallery").textContent = gallery;
    $("#subjects-box").hidden = false;
    $("#subject-export").hidden = true;
    $("#subjects-table tbody").replaceChildren(...subjects.map((s) => h("tr", {},
      h("td", {}, s.subject_ref), h("td", {}, s.display_name || ""), h("td", {}, s.templates), h("td", {}, day(s.created_at)),
      h("td", { class: "subject-faces-cell" }, can("subject_faces") ? h("button", { type: "button", class: "small",
        onclick: (ev) => showSubjectFaces(gallery, s.subject_ref, ev.target.parentNode) }, "Show faces") : ""),
      h("td", {}, can("export") ? h("button", { type: "button", class: "small", onclick: () => exportSubject(gallery, s.subject_ref) }, "Export") : "",
        can("erase") ? h("button", { type: "button", class: "small danger", onclick: () => eraseSubject(gallery, s.subject_ref) }, "Erase") : ""))));
    say("galleries-msg", "ok", `${subjects.length} subject(s) in ${gallery}.`);
  });
}

// A subject's enrolled face crops, on request (each look is ledgered).
async function showSubjectFaces(gallery, ref, cell) {
  await guarded("galleries-msg", async () => {
    const r = await api("GET", `/v1/galleries/${encodeURIComponent(gallery)}/subjects/${encodeURIComponent(ref)}/faces`);
    cell.replaceChildren(h("div", { class: "subject-faces" }, r.faces.length ? r.faces.map((src, i) =>
      h("img", { class: "face-crop", src, alt: `${ref}, enrolled face ${i + 1}` })) : h("span", { class: "fine" }, "none kept")));
    say("galleries-msg", "ok", `${r.faces.length} enrolled face(s) of ${ref} shown (ledgered).`);
  });
}

async function exportSubject(gallery, ref) {
  await guarded("galleries-msg", async () => {
    const data = await api("GET", `/v1/galleries/${encodeURIComponent(gallery)}/subjects/${encodeURIComponent(ref)}/export`);
    const pre = $("#subject-export");
    pre.textContent = JSON.stringify(data, null, 2);
    pre.hidden = false;
    say("galleries-msg", "ok", `Data-subject export of ${ref} (ledgered).`);
  });
}

async function eraseSubject(gallery, ref) {
  if (!confirm(`Erase ${ref} from ${gallery}? Templates and the data key are destroyed.`)) return;
  await guarded("galleries-msg", async () => {
    const r = await api("DELETE", `/v1/galleries/${encodeURIComponent(gallery)}/subjects/${encodeURIComponent(ref)}`);
    await loadGalleries();
    await loadSubjects(gallery);
    say("galleries-msg", "ok", `${ref} erased (${r.templates_erased} template(s), data key destroyed).`);
  });
}

async function onCreateGallery(ev) {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const body = { name: f.get("name") };
  if (f.get("retention_days")) body.retention_days = Number(f.get("retention_days"));
  await guarded("galleries-msg", async () => {
    const g = await api("POST", "/v1/galleries", { json: body });
    await loadGalleries();
    ev.target.reset();
    say("galleries-msg", "ok", `Gallery ${g.name} created (model ${g.model_id}, ${g.operating_point}).`);
  });
}

// -- consent and enrollment ----------------------------------------------------------------------------------
async function onConsent(ev) {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const gallery = f.get("gallery");
  const body = { subject_ref: f.get("subject_ref"), purpose: f.get("purpose"), notice_version: f.get("notice_version"),
    method: f.get("method"), legal_basis: f.get("legal_basis"), valid_days: Number(f.get("valid_days") || 365) };
  await guarded("consent-msg", async () => {
    const r = await api("POST", `/v1/galleries/${encodeURIComponent(gallery)}/consents`, { json: body });
    say("consent-msg", "ok", `Consent ${r.id.slice(0, 8)} recorded for ${r.subject_ref}, expires ${day(r.expires_at)}.`);
    const enroll = $("#enroll-form");
    enroll.elements.subject_ref.value = r.subject_ref;
    enroll.elements.gallery.value = gallery;
    await loadConsents().catch(() => {});
  });
}

const enrollPicks = new Map();   // photo number -> face index the user clicked

async function onEnroll(ev) {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const gallery = f.get("gallery");
  f.delete("gallery");
  if (!f.get("display_name")) f.delete("display_name");
  (enrollChoices(ev.target, enrollPicks) || []).forEach((c) => f.append("faces", c));
  $("#enroll-pick").replaceChildren();
  await guarded("enroll-msg", async () => {
    let r;
    try {
      r = await api("POST", `/v1/galleries/${encodeURIComponent(gallery)}/enroll`, { form: f });
    } catch (e) {
      if (e instanceof ApiError && Array.isArray(e.problem.rejections)) offerEnrollFaces(ev.target, e.problem.rejections, enrollPicks);
      throw e;
    }
    enrollPicks.clear();
    say("enroll-msg", "ok", `${r.subject_ref} enrolled in ${r.gallery}: ${r.templates_added} template(s) added, ` +
      `${r.templates_existing} already stored (ledger entry ${r.ledger_seq}).`);
  });
}

async function loadConsents() {
  const gallery = $("#consents-gallery").value;
  if (!gallery) return;
  const records = await api("GET", `/v1/galleries/${encodeURIComponent(gallery)}/consents`);
  $("#consents-table tbody").replaceChildren(...records.map((c) => h("tr", {},
    h("td", {}, c.subject_ref), h("td", {}, c.purpose), h("td", {}, c.legal_basis), h("td", {}, c.method),
    h("td", {}, day(c.given_at)), h("td", {}, day(c.expires_at)), h("td", {}, day(c.withdrawn_at)),
    h("td", {}, c.withdrawn_at ? "" : h("button", { type: "button", class: "small danger",
      onclick: () => withdraw(gallery, c.subject_ref) }, "Withdraw")))));
}

async function withdraw(gallery, ref) {
  if (!confirm(`Withdraw the consent of ${ref}? The subject is erased at once.`)) return;
  await guarded("consent-msg", async () => {
    const r = await api("POST", `/v1/galleries/${encodeURIComponent(gallery)}/consents/withdraw`, { json: { subject_ref: ref } });
    say("consent-msg", "ok", `Consent withdrawn; ${ref} erased (${r.templates_erased} template(s)).`);
    await loadConsents();
  });
}

// -- identification and review ------------------------------------------------------------------------------
async function loadTargets() {
  // Declared targets are a closed vocabulary set by the policy: offered as a choice, never typed.
  const t = await api("GET", "/v1/targets");
  $("#identify-targets").replaceChildren(...t.allowed.map((x) => h("option", { value: x }, x.replaceAll("_", " "))));
  $("#identify-prohibited").textContent = `Never allowed (refused and ledgered): ${t.prohibited.map((x) => x.replaceAll("_", " ")).join(", ")}.`;
}

async function onIdentify(ev) {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const gallery = f.get("gallery");
  const flags = f.getAll("flags");
  const form = new FormData();
  form.append("photo", f.get("photo"));
  form.append("purpose", f.get("purpose"));
  if (f.get("top_k")) form.append("top_k", f.get("top_k"));
  if (f.get("face")) form.append("face", f.get("face"));
  flags.forEach((x) => form.append("flags", x));
  const out = $("#identify-result");
  out.replaceChildren();
  await guarded("identify-msg", async () => {
    const r = await api("POST", `/v1/galleries/${encodeURIComponent(gallery)}/identify`, { form });
    say("identify-msg", "ok", `Search ledgered (entry ${r.ledger_seq}) under authorization ${r.authorization_id.slice(0, 8)}.`);
    out.append(h("p", { class: "label" }, `Leads: ${r.label}`),
      h("p", {}, `threshold ${fmt(r.threshold)} (${r.operating_point}) · model ${r.model_id} · ${r.faces.length} face(s)`),
      h("p", { id: "identify-fpir", class: r.expected_fpir > 0.05 ? "warn" : "" }, `Gallery of ${r.gallery_subjects} subject(s): ` +
        (r.expected_fpir === null || r.expected_fpir === undefined ? "expected false-positive rate unknown (uncalibrated threshold)."
          : `about ${(100 * r.expected_fpir).toFixed(r.expected_fpir < 0.01 ? 2 : 0)}% of searches for someone not enrolled ` +
            "return a candidate at this threshold (expected FPIR).")));
    if (r.no_match) out.append(h("div", { class: "verdict no", id: "identify-nomatch" }, "No match: nobody reaches the threshold."));
    const probe = f.get("photo");
    for (const face of r.faces) {
      const index = r.faces.length > 1 || f.get("face") ? `face #${f.get("face") || r.faces.indexOf(face)}` : "the face";
      const crop = h("img", { class: "face-crop probe", alt: `probe ${index}` });
      faceCrop(probe, face.face.box).then((url) => { crop.src = url; }).catch(() => {});
      const head = h("figure", { class: "crop-fig" }, crop, h("figcaption", {}, `probe: ${index}`));
      if (!face.candidates.length) { out.append(h("div", { class: "lead" }, head, h("p", {}, "no match"))); continue; }
      const list = h("ol", { class: "candidates" }, face.candidates.map((c) => h("li", { class: "candidate" }, `${c.subject_ref} — score ${fmt(c.score)}`)));
      out.append(h("div", { class: "lead" }, h("h3", {}, `Lead ${face.lead_id.slice(0, 8)} (pending review)`),
        h("div", { class: "side-by-side" }, head, list)));
      if (can("lead_show")) candidateFaces(face.lead_id, list).catch(() => {});
    }
    if (r.faces.some((x) => x.candidates.length) && !can("lead_show")) {
      out.append(h("p", { class: "fine", id: "identify-faces-note" }, "The candidates' enrolled faces are shown to the " +
        "reviewers of the lead (Review tab, Compare faces), not to the person who searched."));
    }
  });
}

// Each candidate's enrolled face beside its name (roles allowed to see a lead's evidence; ledgered).
async function candidateFaces(leadId, list) {
  const ev = await api("GET", `/v1/leads/${encodeURIComponent(leadId)}/evidence`);
  ev.candidates.forEach((c, i) => {
    const li = list.children[i];
    if (!li || !c.crop) return;
    li.replaceChildren(h("div", { class: "candidate-face" }, h("img", { class: "face-crop enrolled", src: c.crop,
      alt: `enrolled face of ${c.subject_ref}` }), h("span", {}, `${c.subject_ref} — score ${fmt(c.score)}`)));
  });
}

async function loadLeads() {
  const status = $("#leads-status").value;
  const leads = await api("GET", `/v1/leads${status ? `?status=${status}` : ""}`);
  const box = $("#leads");
  box.replaceChildren();
  if (!leads.length) box.append(h("p", { class: "fine" }, "No leads."));
  leads.forEach((lead) => box.append(leadCard(lead)));
  say("review-msg", "", "");
}

function leadCard(lead) {
  const form = h("form", { class: "form review-form" });
  const choice = h("select", { name: "subject_ref" }, lead.candidates.map((c) => h("option", { value: c.subject_ref }, c.subject_ref)));
  form.append(h("div", { class: "row" },
    h("label", {}, "Decision ", h("select", { name: "decision" }, ["confirmed", "rejected", "inconclusive"].map((d) => h("option", { value: d }, d)))),
    h("label", {}, "Candidate (if confirmed) ", choice)),
  h("label", {}, "Rationale ", h("textarea", { name: "rationale", required: true, rows: 2 })),
  h("button", { type: "submit" }, "Record decision"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const body = { decision: f.get("decision"), rationale: f.get("rationale") };
    if (body.decision === "confirmed") body.subject_ref = f.get("subject_ref");
    await guarded("review-msg", async () => {
      const r = await api("POST", `/v1/leads/${encodeURIComponent(lead.id)}/reviews`, { json: body });
      say("review-msg", "ok", `Lead ${r.id.slice(0, 8)}: ${r.status} (ledgered).`);
      await loadLeads();
      say("review-msg", "ok", `Lead ${r.id.slice(0, 8)}: ${r.status} (ledgered).`);
    });
  });
  const evidence = h("div", { class: "evidence" });
  const compare = can("lead_show") ? h("button", { type: "button", class: "compare" }, "Compare faces") : "";
  if (compare) compare.addEventListener("click", () => guarded("review-msg", () => showEvidence(lead, evidence)));
  const closed = `decided ${day(lead.decided_at)}${lead.confirmed_subject ? `: ${lead.confirmed_subject}` : ""}` +
    (lead.disagreement ? " — the two reviewers disagreed" : "");
  return h("article", { class: `lead ${lead.status}`, "data-lead": lead.id },
    h("h3", {}, `Lead ${lead.id.slice(0, 8)} · ${lead.status}`),
    h("p", { class: "label" }, lead.label),
    h("p", {}, `gallery ${lead.gallery} · purpose ${lead.purpose || "–"} · reference ${lead.reference || "–"} · ` +
      `searched by ${lead.searched_by} at ${day(lead.created_at)} · threshold ${fmt(lead.threshold)}`),
    h("ol", {}, lead.candidates.map((c) => h("li", {}, `${c.subject_ref} — score ${fmt(c.score)}`))),
    compare, evidence,
    lead.status === "pending" ? form : h("p", {}, closed));
}

// The probe's face beside each candidate's enrolled face, with scores (each look is ledgered).
// While a lead is pending a reviewer sees only their own decision, never another reviewer's.
async function showEvidence(lead, box) {
  const ev = await api("GET", `/v1/leads/${encodeURIComponent(lead.id)}/evidence`);
  const face = (src, caption, cls) => h("figure", { class: `crop ${cls}` },
    src ? h("img", { src, alt: caption }) : h("div", { class: "gone" }, "not kept"), h("figcaption", {}, caption));
  box.replaceChildren(h("div", { class: "faces" }, face(ev.probe_crop, "probe", "probe"),
    ...ev.candidates.map((c) => face(c.crop, `#${c.rank} ${c.subject_ref} · score ${fmt(c.score)}`, "candidate"))),
  ...ev.reviews.map((r) => h("p", { class: "fine" }, `${r.reviewer}: ${r.decision}${r.subject_ref ? ` (${r.subject_ref})` : ""} — ${r.rationale}`)));
}

// -- ledger and reports --------------------------------------------------------------------------------------
async function onLedgerVerify() {
  const out = $("#ledger-result");
  out.replaceChildren();
  await guarded("ledger-msg", async () => {
    const r = await api("POST", "/v1/ledger/verify", { json: { checkpoints: true } });
    say("ledger-msg", r.ok ? "ok" : "error", r.summary);
    out.append(h("div", { class: `verdict ${r.ok ? "yes" : "no"}`, id: "ledger-verdict" }, r.ok ? "Ledger intact" : "Ledger NOT intact"),
      h("p", {}, `${r.checked} entries checked · ${r.checkpoints} signed checkpoint(s) matched` +
        (r.head ? ` · head ${r.head.seq}: ${r.head.hash.slice(0, 16)}…` : "")));
    r.problems.forEach((p) => out.append(h("p", { class: "bad" }, `${p.kind} at entry ${p.seq}: ${p.message}`)));
  });
}

async function onCheckpoint() {
  await guarded("ledger-msg", async () => {
    const c = await api("POST", "/v1/ledger/checkpoints");
    say("ledger-msg", "ok", `Checkpoint signed at entry ${c.seq} (key ${c.key_id}), saved as ${c.file}. Ship it somewhere safe.`);
  });
}

async function onExport() {
  await guarded("ledger-msg", async () => {
    const res = await api("GET", "/v1/ledger/export", { raw: true });
    const text = await res.text();
    const lines = text.trim().split("\n");
    const a = h("a", { href: URL.createObjectURL(new Blob([text], { type: "application/x-ndjson" })), download: "faceledger-ledger.jsonl" }, "download");
    say("ledger-msg", "ok", `${lines.length} entries exported: `, a);
    const tail = $("#ledger-tail");
    tail.textContent = lines.slice(-5).map((l) => JSON.stringify(JSON.parse(l))).join("\n");
    tail.hidden = false;
  });
}

async function onReport(ev) {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const q = new URLSearchParams();
  if (f.get("from")) q.set("from", `${f.get("from")}T00:00:00Z`);
  if (f.get("to")) q.set("to", `${f.get("to")}T23:59:59Z`);
  const out = $("#report-result");
  out.replaceChildren();
  await guarded("report-msg", async () => {
    const r = await api("GET", `/v1/reports/usage?${q}`);
    say("report-msg", "ok", `${r.entries} ledger entries from ${day(r.start)} to ${day(r.end)} (this report is ledgered too).`);
    const table = (title, m) => h("div", { class: "card" }, h("h3", {}, title),
      h("table", { class: "table" }, h("tbody", {}, Object.entries(m || {}).map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, typeof v === "object" ? JSON.stringify(v) : v))))));
    out.append(h("div", { class: "cards", id: "report-cards" }, table("By operation", r.by_operation), table("By outcome", r.by_outcome),
      table("By purpose", r.by_purpose), table("By actor", r.by_actor), table("Refusals", r.refusals),
      table("Erasures", r.erasures), table("Review decisions", r.review_decisions), table("Time to decision", r.time_to_decision)));
  });
}

// -- wiring -----------------------------------------------------------------------------------------------
function wire() {
  $("#signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    await guarded("signin-msg", async () => { await signIn($("#signin-key").value.trim()); $("#signin-key").value = ""; });
  });
  $("#sign-out").addEventListener("click", signOut);
  $$("#tabs button").forEach((b) => b.addEventListener("click", () => show(b.dataset.tab)));
  $("#verify-form").addEventListener("submit", onVerify);
  $("#redact-form").addEventListener("submit", onRedact);
  $("#gallery-form").addEventListener("submit", onCreateGallery);
  $("#galleries-refresh").addEventListener("click", () => guarded("galleries-msg", loadGalleries));
  $("#consent-form").addEventListener("submit", onConsent);
  $("#enroll-form").addEventListener("submit", onEnroll);
  $("#consents-refresh").addEventListener("click", () => guarded("consent-msg", async () => { await loadConsents(); say("consent-msg", "", ""); }));
  $("#identify-form").addEventListener("submit", onIdentify);
  $("#identify-form input[name=photo]").addEventListener("change", () => offerIdentifyFaces($("#identify-form")));
  $("#enroll-form input[name=photos]").addEventListener("change", () => { enrollPicks.clear(); $("#enroll-pick").replaceChildren(); });
  $("#verify-a").addEventListener("change", () => { $("#verify-form").elements.face_a.value = ""; });
  $("#verify-b").addEventListener("change", () => { $("#verify-form").elements.face_b.value = ""; });
  wireDetect();
  $("#leads-refresh").addEventListener("click", () => guarded("review-msg", loadLeads));
  $("#leads-status").addEventListener("change", () => guarded("review-msg", loadLeads));
  $("#ledger-verify").addEventListener("click", onLedgerVerify);
  $("#ledger-checkpoint").addEventListener("click", onCheckpoint);
  $("#ledger-export").addEventListener("click", onExport);
  $("#report-form").addEventListener("submit", onReport);
  wireAdmin();
  wireSetup(() => loadGalleries().catch(() => {}));
  wireRing(switchTo);
  wirePolicy(() => signIn(state.token));       // purposes and identification shown follow the new policy
  window.addEventListener("faceledger:key-gone", keyGone);
  if (state.token) signIn(state.token).catch(() => signOut());
  else show("signin");
}

wire();
