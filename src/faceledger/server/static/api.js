// FaceLedger web page: the API client and the DOM helpers shared by app.js (plain JavaScript, no build step).
// Every refusal is shown as the service explains it (problem+json "detail" and "code").

export const KEY = "faceledger.apiKey";
export const state = { token: sessionStorage.getItem(KEY), me: null, galleries: [] };
export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

// -- DOM helpers (text only: nothing from the server is ever parsed as HTML) --------------------------
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}
export const can = (op) => Boolean(state.me && state.me.operations.includes(op));
export const fmt = (n, d = 4) => (n === null || n === undefined ? "–" : Number(n).toFixed(d));
export const day = (t) => (t ? String(t).slice(0, 16).replace("T", " ") : "–");

// -- the API ------------------------------------------------------------------------------------------
export class ApiError extends Error {
  constructor(problem) { super(problem.detail || problem.title || "error"); this.problem = problem; }
}

export async function api(method, path, { json, form, raw } = {}) {
  const headers = {};
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  let body;
  if (json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(json); }
  if (form !== undefined) body = form;
  if (method === "POST" || method === "DELETE") headers["Idempotency-Key"] = crypto.randomUUID();
  let res;
  try {
    res = await fetch(path, { method, headers, body });
  } catch (e) {
    throw new ApiError({ code: "network", detail: "the service cannot be reached" });
  }
  if (raw && res.ok) return res;
  const type = res.headers.get("content-type") || "";
  const data = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok) {
    const problem = typeof data === "object" ? data : { code: `http_${res.status}`, detail: data };
    problem.status = res.status;
    problem.retryAfter = res.headers.get("retry-after");
    throw new ApiError(problem);
  }
  return data;
}

// What each refusal means, in the words a user needs (the service's own detail follows).
export const EXPLAIN = {
  permission_denied: "Your role may not do this under the deployment's policy.",
  consent_required: "No valid consent covers this: record the subject's consent first.",
  authorization_required: "No valid authorization covers this gallery and purpose.",
  identification_disabled: "1:N identification is turned off in this deployment's policy.",
  prohibited_use: "This use is prohibited and has been logged.",
  purpose_not_allowed: "The policy does not allow this purpose.",
  self_review: "The person who ran a search cannot review it.",
  rate_limited: "Too many requests for now.",
  overloaded: "The service is at capacity.",
  unauthenticated: "Sign in with a valid API key.",
  no_face: "No face was found in the photo.",
  multiple_faces: "The photo shows several faces: choose one (an index, 'largest' or 'center').",
  enrollment_rejected: "Nothing was stored: every photo must pass the gallery's quality gate.",
  file_too_large: "The photo is too large (15 MB at most).",
  image_too_large: "The photo has too many pixels.",
  request_too_large: "The upload is too large.",
  unsupported_format: "Only JPEG, PNG and WebP photos are accepted.",
  corrupt_image: "The photo cannot be read.",
  not_found: "Not found.",
  conflict: "This conflicts with what is already stored.",
};

export function say(id, kind, text, extra) {
  const box = document.getElementById(id);
  box.replaceChildren();
  if (!text && !extra) { box.className = "msg"; return; }
  box.className = `msg ${kind}`;
  box.append(h("span", {}, text));
  if (extra) box.append(extra);
}

export function refusal(id, err) {
  const p = err.problem || { code: "error", detail: String(err) };
  const lead = EXPLAIN[p.code] || (p.status >= 500 ? "The service failed to do this." : "Refused.");
  const parts = [h("strong", {}, `${lead} `), h("span", {}, p.detail || ""), h("code", { class: "code-tag" }, p.code)];
  if (p.retryAfter) parts.push(h("span", {}, ` Retry in ${p.retryAfter} s.`));
  if (Array.isArray(p.rejections)) {
    parts.push(h("ul", {}, p.rejections.map((r) => h("li", {}, `photo ${r.photo}: ${r.reason}`))));
  }
  say(id, p.status === 403 || p.status === 401 ? "refused" : "error", "", h("span", {}, parts));
}

export async function guarded(id, fn) {
  say(id, "busy", "Working…");
  try { await fn(); } catch (e) { if (e instanceof ApiError) refusal(id, e); else { say(id, "error", String(e)); throw e; } }
}
