// FaceLedger API reference: drawn from /openapi.json by this file (no CDN, no build step, text only).

const $ = (sel) => document.querySelector(sel);

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, v);
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

const refName = (ref) => ref.split("/").pop();
const anchor = (method, path) => `op-${method}-${path.replace(/[^A-Za-z0-9]+/g, "-")}`;

// A schema in one short line: "string", "integer ≥ 1", "array of Lead", "Gallery" (a link).
function typeOf(schema) {
  if (!schema) return "any";
  if (schema.$ref) return h("a", { href: `#schema-${refName(schema.$ref)}` }, refName(schema.$ref));
  for (const key of ["anyOf", "oneOf", "allOf"]) {
    if (schema[key]) {
      const parts = schema[key].filter((s) => s.type !== "null").map(typeOf);
      const out = h("span", {});
      parts.forEach((p, i) => out.append(i ? " or " : "", p));
      if (schema[key].some((s) => s.type === "null")) out.append(" (nullable)");
      return out;
    }
  }
  if (schema.type === "array") return h("span", {}, "array of ", typeOf(schema.items));
  if (schema.enum) return `one of ${schema.enum.map((v) => JSON.stringify(v)).join(", ")}`;
  let text = schema.type || "object";
  if (schema.format) text += ` (${schema.format})`;
  if (schema.minimum !== undefined) text += ` ≥ ${schema.minimum}`;
  if (schema.maximum !== undefined) text += ` ≤ ${schema.maximum}`;
  if (schema.maxLength !== undefined) text += `, at most ${schema.maxLength} characters`;
  return text;
}

function fieldsTable(schema, doc) {
  const resolved = schema && schema.$ref ? doc.components.schemas[refName(schema.$ref)] : schema;
  if (!resolved || !resolved.properties) return h("p", {}, "Body: ", typeOf(schema));
  const required = new Set(resolved.required || []);
  const rows = Object.entries(resolved.properties).map(([name, s]) => h("tr", {},
    h("td", {}, h("code", {}, name)), h("td", {}, typeOf(s)), h("td", {}, required.has(name) ? "yes" : ""),
    h("td", {}, s.description || s.title || "")));
  return h("div", { class: "scroll" }, h("table", { class: "table" },
    h("thead", {}, h("tr", {}, h("th", {}, "Field"), h("th", {}, "Type"), h("th", {}, "Required"), h("th", {}, "About"))),
    h("tbody", {}, rows)));
}

function curl(method, path, op) {
  const parts = [`curl -X ${method.toUpperCase()}`];
  if (path.startsWith("/v1/")) parts.push('-H "Authorization: Bearer $FACELEDGER_KEY"');
  const body = op.requestBody && op.requestBody.content;
  if (body && body["multipart/form-data"]) parts.push("-F photo=@photo.jpg");
  else if (body && body["application/json"]) parts.push("-H 'Content-Type: application/json' -d '{...}'");
  parts.push(`${location.origin}${path}`);
  return parts.join(" ");
}

function operation(method, path, op, doc) {
  const id = anchor(method, path);
  const box = h("article", { class: "op", id },
    h("h3", {}, h("span", { class: `method ${method}` }, method.toUpperCase()), " ", h("code", {}, path)),
    op.summary ? h("p", { class: "summary" }, op.summary) : null,
    op.description ? h("p", { class: "prose" }, op.description) : null);
  const params = op.parameters || [];
  if (params.length) {
    box.append(h("h4", {}, "Parameters"), h("div", { class: "scroll" }, h("table", { class: "table" },
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "In"), h("th", {}, "Type"), h("th", {}, "Required"),
        h("th", {}, "About"))),
      h("tbody", {}, params.map((p) => h("tr", {}, h("td", {}, h("code", {}, p.name)), h("td", {}, p.in),
        h("td", {}, typeOf(p.schema)), h("td", {}, p.required ? "yes" : ""), h("td", {}, p.description || "")))))));
  }
  if (op.requestBody) {
    for (const [type, content] of Object.entries(op.requestBody.content || {})) {
      box.append(h("h4", {}, `Body (${type})`), fieldsTable(content.schema, doc));
    }
  }
  box.append(h("h4", {}, "Responses"), h("ul", { class: "responses" }, Object.entries(op.responses || {}).map(([code, r]) => {
    const content = r.content ? Object.entries(r.content)[0] : null;
    return h("li", {}, h("strong", {}, code), ` ${r.description || ""}`, content ? h("span", { class: "fine" }, " · ",
      content[0], content[1].schema ? h("span", {}, " ", typeOf(content[1].schema)) : "") : "");
  })));
  box.append(h("pre", { class: "code" }, curl(method, path, op)));
  return box;
}

function schemaBlock(name, schema, doc) {
  return h("article", { class: "op", id: `schema-${name}` }, h("h3", {}, name),
    schema.description ? h("p", { class: "prose" }, schema.description) : null, fieldsTable(schema, doc));
}

async function main() {
  let doc;
  try {
    const res = await fetch("/openapi.json");
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    doc = await res.json();
  } catch (e) {
    $("#docs-msg").className = "msg error";
    $("#docs-msg").textContent = `The OpenAPI document cannot be read: ${e.message}`;
    return;
  }
  $("#api-title").textContent = `${doc.info.title} ${doc.info.version}: API reference`;
  $("#api-intro").textContent = doc.info.description || "";
  const groups = new Map();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags && op.tags[0]) || "other";
      if (!groups.has(tag)) groups.set(tag, []);
      groups.get(tag).push([method, path, op]);
    }
  }
  const toc = $("#api-toc"), ops = $("#api-ops");
  for (const [tag, list] of groups) {
    toc.append(h("div", { class: "toc-group" }, h("strong", {}, tag), h("ul", {}, list.map(([m, p, op]) =>
      h("li", {}, h("a", { href: `#${anchor(m, p)}` }, h("span", { class: `method ${m}` }, m.toUpperCase()), ` ${p}`),
        op.summary ? h("span", { class: "fine" }, ` ${op.summary}`) : null)))));
    ops.append(h("h2", { id: `tag-${tag}` }, tag), ...list.map(([m, p, op]) => operation(m, p, op, doc)));
  }
  const schemas = (doc.components && doc.components.schemas) || {};
  $("#api-schemas").append(...Object.keys(schemas).sort().map((name) => schemaBlock(name, schemas[name], doc)));
  if (location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
}

main();
