// postprod review: gallery and per-image view. No framework, no build step.
// Every text from the shoot (paths, reasons, comments) goes through textContent.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

function h(tag, attrs = {}, ...children) {
  const svg = ["svg", "g", "rect", "ellipse", "line", "polygon", "text", "title", "path", "circle", "defs",
    "linearGradient", "stop"].includes(tag);
  const el = svg ? document.createElementNS(SVG_NS, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") el.textContent = v;
    else if (k === "style") el.style.cssText = v; // through the CSSOM: the page's CSP refuses style attributes
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) el.append(c);
  }
  return el;
}

const enc = (sp) => sp.split("/").map(encodeURIComponent).join("/");
const fmt = (v, nd = 2, sign = false) =>
  v === null || v === undefined ? "–" : (sign && v > 0 ? "+" : "") + Number(v).toFixed(nd);

function toast(message, kind = "info") {
  const t = document.getElementById("toast");
  t.textContent = message;
  t.className = kind;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (t.hidden = true), 4000);
}

// --- reviewer name and settings, kept in the browser ------------------------------------
function reviewerName() {
  const input = document.getElementById("reviewer");
  return (input && input.value.trim()) || document.body.dataset.reviewer || "";
}

function setupReviewer() {
  const input = document.getElementById("reviewer");
  input.value = localStorage.getItem("postprod.reviewer") || document.body.dataset.reviewer || "";
  input.addEventListener("change", () => localStorage.setItem("postprod.reviewer", input.value.trim()));
  const auto = document.getElementById("auto-advance");
  auto.checked = localStorage.getItem("postprod.autoAdvance") === "1";
  auto.addEventListener("change", () => localStorage.setItem("postprod.autoAdvance", auto.checked ? "1" : "0"));
}

const autoAdvance = () => document.getElementById("auto-advance").checked;

async function api(method, url, body) {
  const opts = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(url, opts);
  let data = null;
  try { data = await resp.json(); } catch (e) { data = { error: resp.statusText }; }
  return { status: resp.status, data };
}

function typing(ev) {
  const t = ev.target;
  if (!t) return false;
  if (t.tagName === "INPUT") return !["checkbox", "radio", "button", "submit"].includes(t.type);
  return t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable;
}

// --- confirmation for bulk actions -------------------------------------------------------
function confirmBox(text, lines = []) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  const items = lines.slice(0, 8).map((l) => h("li", { text: l }));
  if (lines.length > 8) items.push(h("li", { text: `… and ${lines.length - 8} more` }));
  document.getElementById("confirm-list").replaceChildren(...items);
  return new Promise((resolve) => {
    // The close event is dispatched as a later task: one from the previous box (Escape, then a
    // key that opens this one) can arrive after this box is open, and must not answer it.
    const onClose = () => {
      if (dialog.open) return;
      dialog.removeEventListener("close", onClose);
      resolve(dialog.returnValue === "ok");
    };
    dialog.addEventListener("close", onClose);
    dialog.returnValue = "cancel";
    dialog.showModal();
    document.getElementById("confirm-ok").focus();
  });
}

// --- culling: flag, stars, label -----------------------------------------------------------
const LABELS = ["Red", "Yellow", "Green", "Blue", "Purple"];
const LABEL_KEYS = { 6: "Red", 7: "Yellow", 8: "Green", 9: "Blue" };

// The culling fields a key sets (Lightroom's: P, X, U; 0-5 stars; 6-9 labels), or null.
function cullingKey(ev) {
  const k = ev.key.toLowerCase();
  if (k === "p") return { flag: "pick" };
  if (k === "x") return { flag: "reject" };
  if (k === "u") return { flag: null };
  if (/^[0-5]$/.test(k)) return { stars: Number(k) };
  if (/^[6-9]$/.test(k)) return { label: LABEL_KEYS[k] };
  return null;
}

function describeCulling(image) {
  return Object.entries(image).map(([k, v]) =>
    k === "flag" ? (v ? (v === "pick" ? "picked" : "rejected") : "unflagged")
      : k === "stars" ? `${v} star${v === 1 ? "" : "s"}` : (v ? `${v.toLowerCase()} label` : "no label")).join(", ");
}

function cullingMarks(item, small = false) {
  const stars = item.stars || 0;
  return h("span", { class: "marks" + (small ? " small" : "") },
    item.flag === "pick" ? h("span", { class: "flag pick", title: "picked", text: "⚑" }) : null,
    item.flag === "reject" ? h("span", { class: "flag reject", title: "rejected", text: "✕" }) : null,
    stars ? h("span", { class: "stars", title: `${stars} star${stars > 1 ? "s" : ""}`, text: "★".repeat(stars) }) : null,
    item.label ? h("span", { class: "label-chip label-" + item.label, title: item.label + " label" }) : null);
}

// --- undo and redo: request bodies kept for this tab ---------------------------------------
const history_ = {
  load(name) { return JSON.parse(sessionStorage.getItem("postprod." + name) || "[]"); },
  save(name, list) { sessionStorage.setItem("postprod." + name, JSON.stringify(list.slice(-100))); },
  push(entry) {
    const undo = this.load("undo");
    undo.push(entry);
    this.save("undo", undo);
    this.save("redo", []);
    refreshUndoButtons();
  },
};

function refreshUndoButtons() {
  const u = history_.load("undo"), r = history_.load("redo");
  const undo = document.getElementById("undo"), redo = document.getElementById("redo");
  undo.disabled = !u.length;
  redo.disabled = !r.length;
  undo.title = u.length ? `Undo: ${u[u.length - 1].label} (Ctrl+Z)` : "Nothing to undo";
  redo.title = r.length ? `Redo: ${r[r.length - 1].label} (Ctrl+Shift+Z)` : "Nothing to redo";
}

function replay(from, to) {
  return queued(() => replayNow(from, to));
}

async function replayNow(from, to) {
  const list = history_.load(from);
  const entry = list.pop();
  if (!entry) return toast(from === "undo" ? "Nothing to undo" : "Nothing to redo");
  const { status, data } = await api("POST", "/api/decisions", entry.body);
  if (status === 200) {
    history_.save(from, list);
    const other = history_.load(to);
    if (data.undo) other.push({ label: entry.label, body: data.undo });
    history_.save(to, other);
    toast(`${from === "undo" ? "Undone" : "Redone"}: ${entry.label}`);
    onDecided(data.images || []);
  } else if (status === 409) {
    history_.save(from, list);
    toast(`Cannot ${from}: ${entry.label} — changed since (another tab or reviewer)`, "warn");
    onDecided(data.stale || []);
  } else {
    toast(data.error || `Cannot ${from}`, "error");
  }
  refreshUndoButtons();
}

// The page's own reaction to images changed by a decision, an undo or a redo.
let onDecided = () => {};

// Decisions go one after the other, each with the versions the previous one left: keys pressed
// faster than the server answers (P then 4 then 6) are all kept, none refused as stale.
let queue = Promise.resolve();
function queued(work) {
  const run = queue.then(work);
  queue = run.catch(() => null);
  return run;
}

// The version of an image as this page knows it now.
function currentVersion(sp) {
  if (view.payload && view.payload.source_path === sp) return view.payload.version;
  for (const [list, index] of [[view.strip, view.stripIndex], [gallery.items, gallery.index]]) {
    const i = index.get(sp);
    if (i !== undefined) return list[i].version;
  }
  return 0;
}

function decide(build, label) {
  return queued(async () => {
    const items = (typeof build === "function" ? build() : build)
      .map((item) => ({ ...item, version: currentVersion(item.source_path) }));
    if (!items.length) return null;
    return postDecision(items, label);
  });
}

async function postDecision(items, label) {
  const { status, data } = await api("POST", "/api/decisions", { reviewer: reviewerName(), items });
  if (status === 200) {
    if (data.undo) history_.push({ label, body: data.undo });
    onDecided(data.images);
    return data;
  }
  if (status === 409) {
    toast("Changed elsewhere meanwhile (another tab or reviewer): reloaded, try again", "warn");
    onDecided(data.stale || []);
  } else {
    toast(data.error || "Not saved", "error");
  }
  return null;
}

// --- re-render ----------------------------------------------------------------------------
async function refreshRenderButton(known) {
  const button = document.getElementById("rerender");
  const data = known || (await api("GET", "/api/render")).data;
  if (data.state === "running") {
    button.disabled = true;
    button.textContent = "Re-rendering…";
    setTimeout(() => pollRender(), 1000);
    return;
  }
  button.disabled = !data.stale;
  button.textContent = data.stale ? `Re-render ${data.stale} stale` : "Exports up to date";
  button.classList.toggle("attention", !!data.stale);
}

async function pollRender() {
  const { data } = await api("GET", "/api/render");
  if (data.state === "running") return setTimeout(pollRender, 1000);
  if (data.state === "failed") toast("Re-render failed: " + data.error, "error");
  else if (data.state === "done") toast(`Re-rendered ${data.rendered.length} image(s) in ${data.seconds} s`);
  refreshRenderButton(data);
  if (data.state === "done") onRendered();
}

let onRendered = () => {};

async function startRender() {
  const { data } = await api("GET", "/api/render");
  if (!(await confirmBox(`Render again the exports of ${data.stale} image(s) whose decisions changed?`,
    ["Every other export is kept as it is.", "Decisions wait until it is done."]))) return;
  const { status, data: started } = await api("POST", "/api/render", { reviewer: reviewerName() });
  if (status !== 202) return toast(started.error || "Cannot re-render", "error");
  refreshRenderButton(started);
}

function setupShared() {
  setupReviewer();
  refreshUndoButtons();
  document.getElementById("undo").addEventListener("click", () => replay("undo", "redo"));
  document.getElementById("redo").addEventListener("click", () => replay("redo", "undo"));
  document.getElementById("rerender").addEventListener("click", startRender);
  document.addEventListener("keydown", (ev) => {
    if (typing(ev) || !(ev.ctrlKey || ev.metaKey)) return;
    const k = ev.key.toLowerCase();
    if (k === "z" && !ev.shiftKey) replay("undo", "redo");
    else if ((k === "z" && ev.shiftKey) || k === "y") replay("redo", "undo");
    else return;
    ev.preventDefault();
  });
  refreshRenderButton();
}

// --- gallery ----------------------------------------------------------------------------
const gallery = { items: [], index: new Map(), selected: 0, chosen: new Set(), anchor: 0, rendered: 0, generation: 0, listing: 0 };
const FILTERS = ["verdict", "review", "flag", "stars", "label", "check"];
const CHECKS = ["faces", "stale", "proposed"];

function galleryQuery() {
  const form = document.getElementById("filters");
  const params = new URLSearchParams();
  for (const name of FILTERS) if (form.elements[name].value) params.set(name, form.elements[name].value);
  for (const name of CHECKS) if (form.elements[name].checked) params.set(name, "1");
  return params;
}

// The "Check" filter's choices: every check the shoot's frames are flagged for, with how many (the chosen one kept).
function fillChecks(counts, chosen) {
  const select = document.getElementById("filters").elements.check;
  const keep = chosen === undefined ? select.value : chosen;
  const names = Object.keys(counts).sort();
  if (keep && !names.includes(keep)) names.push(keep);
  select.replaceChildren(h("option", { value: "", text: "any" }),
    ...names.map((n) => h("option", { value: n, text: `${n.replaceAll("_", " ")} (${counts[n] || 0})` })));
  select.value = keep;
}

function badge(text, cls, title) {
  return h("span", { class: "badge " + cls, text, title });
}

function tileBadges(item) {
  const out = [];
  if (item.status === "failed") return [badge("failed", "failed", item.error)];
  out.push(badge(item.verdict, "verdict-" + item.verdict));
  if (item.faces_to_brighten) {
    out.push(badge(`${item.faces_to_brighten} face${item.faces_to_brighten > 1 ? "s" : ""} to brighten`, "faces"));
  }
  const c = item.counts;
  if (item.review_state === "done") out.push(badge("done", "state-done"));
  else if (item.review_state === "pending") out.push(badge(`${c.pending} to review`, "state-pending"));
  else out.push(badge(`${item.operations - c.pending}/${item.operations} reviewed`, "state-" + item.review_state));
  if (c.rejected) out.push(badge(`${c.rejected} rejected`, "rejected"));
  if (item.proposed) {
    out.push(badge(`${item.proposed} to confirm`, "proposed", "corrections proposed to you: applied once accepted"));
  }
  if (item.stale) out.push(badge("stale export", "stale", "changed in review since its exports were rendered"));
  return out;
}

// Thumbnails load when their tile comes within a screen of the view (and the first screen first).
let thumbObserver = null;

function thumbImage(url) {
  const img = h("img", { "data-src": url, decoding: "async", alt: "" });
  if (!thumbObserver) {
    thumbObserver = new IntersectionObserver((entries) => {
      for (const e of entries) {
        if (!e.isIntersecting) continue;
        e.target.src = e.target.dataset.src;
        thumbObserver.unobserve(e.target);
      }
    }, { rootMargin: "400px 0px" });
  }
  thumbObserver.observe(img);
  return img;
}

function renderTile(item, index) {
  const img = item.thumb ? thumbImage(item.thumb) : h("div", { class: "nothumb", text: "no preview" });
  const cls = "tile" + (item.flag === "reject" ? " culled" : "") + (item.label ? " label-" + item.label : "")
    + (gallery.chosen.has(item.source_path) ? " chosen" : "") + (index === gallery.selected ? " selected" : "");
  return h("div", { class: cls, "data-sp": item.source_path, "data-index": index, title: item.summary || item.error || "" },
    h("div", { class: "thumb" }, img, cullingMarks(item)),
    item.url ? h("a", { class: "name", href: item.url, text: item.source_path }) : h("div", { class: "name", text: item.source_path }),
    h("div", { class: "badges" }, tileBadges(item)));
}

function tileEl(index) {
  if (index >= gallery.rendered) renderTilesUpTo(index + 1);
  return document.querySelector(`#grid > .tile:nth-child(${index + 1})`);
}

async function loadGallery() {
  const params = galleryQuery();
  history.replaceState(null, "", params.toString() ? "?" + params : location.pathname);
  sessionStorage.setItem("postprod.query", params.toString());
  // Filters changed quickly send listings that may come back out of order: only the newest is drawn.
  const asked = ++gallery.listing;
  const { status, data } = await api("GET", "/api/images?" + params);
  if (asked !== gallery.listing) return;
  if (status !== 200) return toast(data.error || "cannot list images", "error");
  gallery.items = data.images;
  fillChecks(data.checks || {});
  gallery.index = new Map(data.images.map((item, i) => [item.source_path, i]));
  gallery.chosen = new Set([...gallery.chosen].filter((sp) => gallery.index.has(sp)));
  const keep = sessionStorage.getItem("postprod.selected");
  gallery.selected = Math.max(0, gallery.index.has(keep) ? gallery.index.get(keep) : 0);
  if (thumbObserver) thumbObserver.disconnect();
  document.getElementById("grid").replaceChildren();
  gallery.rendered = 0;
  // The first screen (and the selected tile) now, the rest in slices between frames: 2,000 tiles
  // built at once would hold the first screen back by a few hundred milliseconds.
  renderTilesUpTo(Math.max(FIRST_TILES, gallery.selected + FIRST_TILES));
  document.getElementById("count").textContent = `${data.images.length} image${data.images.length === 1 ? "" : "s"}`;
  selectTile(gallery.selected, { scroll: true, keep: true });
  const generation = ++gallery.generation;
  const more = () => {
    if (generation !== gallery.generation || gallery.rendered >= gallery.items.length) return;
    renderTilesUpTo(gallery.rendered + TILE_SLICE);
    paintSelection();
    setTimeout(more, 0);
  };
  setTimeout(more, 0);
}

const FIRST_TILES = 60;
const TILE_SLICE = 250;

function renderTilesUpTo(n) {
  n = Math.min(n, gallery.items.length);
  if (n <= gallery.rendered) return;
  const frag = document.createDocumentFragment();
  for (let i = gallery.rendered; i < n; i++) frag.append(renderTile(gallery.items[i], i));
  document.getElementById("grid").append(frag);
  gallery.rendered = n;
}

function refreshSelectionBar() {
  const n = chosenItems().length;
  document.getElementById("selection").textContent = `${n} selected`;
  for (const b of document.querySelectorAll("#batch button, #batch select, #batch input")) b.disabled = !n;
}

function paintSelection() {
  for (const el of document.querySelectorAll(".tile.chosen, .tile.selected")) el.classList.remove("chosen", "selected");
  for (const sp of gallery.chosen) {
    const i = gallery.index.get(sp);
    const el = i < gallery.rendered ? tileEl(i) : null; // the others are drawn chosen when they come
    if (el) el.classList.add("chosen");
  }
  const el = tileEl(gallery.selected);
  if (el) el.classList.add("selected");
  refreshSelectionBar();
}

// Select one tile (and only it), add it (ctrl), or the range from the anchor (shift).
function selectTile(index, { scroll = true, add = false, range = false, keep = false } = {}) {
  const n = gallery.items.length;
  if (!n) return refreshSelectionBar();
  index = Math.max(0, Math.min(n - 1, index));
  const sp = gallery.items[index].source_path;
  if (range) {
    const [a, b] = [Math.min(gallery.anchor, index), Math.max(gallery.anchor, index)];
    if (!add) gallery.chosen.clear();
    for (let i = a; i <= b; i++) gallery.chosen.add(gallery.items[i].source_path);
  } else if (add) {
    if (gallery.chosen.has(sp) && gallery.chosen.size > 1) gallery.chosen.delete(sp); else gallery.chosen.add(sp);
    gallery.anchor = index;
  } else if (!keep || !gallery.chosen.size) {
    gallery.chosen = new Set([sp]);
    gallery.anchor = index;
  }
  gallery.selected = index;
  sessionStorage.setItem("postprod.selected", sp);
  paintSelection();
  if (scroll) { const el = tileEl(index); if (el) el.scrollIntoView({ block: "nearest" }); }
}

function chosenItems() {
  return gallery.items.filter((i) => gallery.chosen.has(i.source_path) && i.url);
}

function columns() {
  const grid = document.getElementById("grid");
  const cols = getComputedStyle(grid).gridTemplateColumns.split(" ").filter(Boolean).length;
  return Math.max(1, cols);
}

function updateTiles(tiles) {
  for (const tile of tiles) {
    const i = gallery.index.get(tile.source_path);
    if (i === undefined) continue;
    gallery.items[i] = tile;
    const old = tileEl(i);
    if (old) old.replaceWith(renderTile(tile, i));
  }
  paintSelection();
  refreshRenderButton();
}

async function cullChosen(image) {
  const items = chosenItems();
  if (!items.length) return;
  const label = `${describeCulling(image)}: ${items.length === 1 ? items[0].source_path : items.length + " images"}`;
  if (items.length === 1 && autoAdvance()) selectTile(gallery.selected + 1);
  await decide(items.map((i) => ({ source_path: i.source_path, image })), label);
}

const BULK_WORDS = { accepted: "Accept", rejected: "Reject", done: "Mark done" };

async function bulkStatus(status) {
  const items = chosenItems();
  if (!items.length) return;
  const what = status === "done" ? "every instruction not rejected" : "the pending automatic corrections";
  const pending = items.reduce((n, i) => n + (i.counts ? i.counts.pending : 0), 0);
  const ok = await confirmBox(`${BULK_WORDS[status]} ${what} of ${items.length} image${items.length > 1 ? "s" : ""}?`,
    [status === "done" ? "Marks the instructions carried out." : `${pending} instruction(s) are pending in all; ` +
      "flags, retouchers' tasks and corrections proposed to you are left for you to answer one by one " +
      "(or with Accept proposals).", ...items.map((i) => i.source_path)]);
  if (!ok) return;
  await decide(items.map((i) => ({ source_path: i.source_path, all: { status } })),
    `${BULK_WORDS[status].toLowerCase()} ${what}: ${items.length} image(s)`);
}

// The corrections proposed to a person (applied once accepted): accepted or rejected together after a look at
// them (the filter "to confirm", the image page's "Proposed" view), never with the automatic ones.
async function bulkProposals(status) {
  const items = chosenItems().filter((i) => i.proposed);
  if (!items.length) return toast("None of the selected images has a correction to confirm", "warn");
  const n = items.reduce((k, i) => k + i.proposed, 0);
  const ok = await confirmBox(`${BULK_WORDS[status]} the ${n} proposed correction(s) of ${items.length} image(s)?`,
    [status === "accepted" ? "The renderer applies them once accepted (re-render the exports)."
      : "They are not applied.",
      ...items.map((i) => i.source_path)]);
  if (!ok) return;
  await decide(items.map((i) => ({ source_path: i.source_path, all: { status, proposals: true } })),
    `${BULK_WORDS[status].toLowerCase()} the proposed corrections: ${items.length} image(s)`);
}

async function batchStars() {
  const select = document.getElementById("batch-stars");
  if (select.value === "") return;
  const stars = Number(select.value);
  select.value = "";
  const items = chosenItems();
  if (items.length > 1 && !(await confirmBox(`Set ${stars} star(s) on ${items.length} images?`,
    items.map((i) => i.source_path)))) return;
  cullChosen({ stars });
}

// The amounts the batch bar sets on every selected image that has the operation: the global exposure, or the
// shadow lift proposed on a backlit frame (never negative: a lift that darkens is no lift).
const BATCH_AMOUNTS = {
  exposure: { what: "exposure correction", min: -5 },
  lift_shadows: { what: "shadow lift", min: 0 },
};

function syncBatchAmount() {
  const input = document.getElementById("batch-ev");
  input.min = BATCH_AMOUNTS[document.getElementById("batch-ev-kind").value].min;
  if (Number(input.value) < Number(input.min)) input.value = input.min;
}

async function batchExposure() {
  const kind = document.getElementById("batch-ev-kind").value;
  const { what, min } = BATCH_AMOUNTS[kind];
  const ev = Number(document.getElementById("batch-ev").value);
  if (!Number.isFinite(ev) || ev < min) {
    return toast(`A ${what} of ${fmt(ev, 2, true)} EV cannot be set (${min} EV at least)`, "warn");
  }
  const items = chosenItems();
  const having = items.filter((i) => (i.kinds || []).includes(kind));
  if (!having.length) return toast(`None of the selected images has a ${what}`, "warn");
  const skipped = items.length - having.length;
  if (!(await confirmBox(`Set the ${what} to ${fmt(ev, 2, true)} EV on ${having.length} image(s)?`,
    [skipped ? `${skipped} selected image(s) have no ${what} and are left alone.` : "Changing the amount accepts it.",
      ...having.map((i) => i.source_path)]))) return;
  await decide(having.map((i) => ({ source_path: i.source_path, amount: { kind, ev } })),
    `${what} ${fmt(ev, 2, true)} EV: ${having.length} image(s)`);
}

function setupGallery() {
  const form = document.getElementById("filters");
  const params = new URLSearchParams(location.search);
  if (params.get("check")) fillChecks({}, params.get("check"));  // its option, before the listing names them all
  for (const name of FILTERS) form.elements[name].value = params.get(name) || "";
  for (const name of CHECKS) form.elements[name].checked = params.get(name) === "1";
  form.addEventListener("change", (ev) => {
    if (ev.target.tagName === "SELECT") ev.target.blur(); // the keys go back to the gallery
    loadGallery();
  });
  form.addEventListener("submit", (ev) => ev.preventDefault());
  onDecided = updateTiles;
  onRendered = loadGallery;
  const grid = document.getElementById("grid");
  grid.addEventListener("click", (ev) => {
    const tile = ev.target.closest(".tile");
    if (!tile) return;
    if (ev.target.closest("a.name") && !(ev.ctrlKey || ev.metaKey || ev.shiftKey)) return; // the link opens
    ev.preventDefault();
    selectTile(Number(tile.dataset.index), { scroll: false, add: ev.ctrlKey || ev.metaKey, range: ev.shiftKey });
  });
  grid.addEventListener("dblclick", (ev) => {
    const tile = ev.target.closest(".tile");
    const item = tile && gallery.items[Number(tile.dataset.index)];
    if (item && item.url) location.href = item.url;
  });
  for (const b of document.querySelectorAll("[data-batch]")) b.addEventListener("click", () => bulkStatus(b.dataset.batch));
  for (const b of document.querySelectorAll("[data-proposals]")) {
    b.addEventListener("click", () => bulkProposals(b.dataset.proposals));
  }
  document.getElementById("batch-stars").addEventListener("change", batchStars);
  document.getElementById("batch-ev-set").addEventListener("click", batchExposure);
  document.getElementById("batch-ev-kind").addEventListener("change", syncBatchAmount);
  document.addEventListener("keydown", (ev) => {
    if (typing(ev) || ev.altKey || document.getElementById("confirm").open) return;
    const k = ev.key;
    if (ev.ctrlKey || ev.metaKey) {
      if (k.toLowerCase() === "a") {
        gallery.chosen = new Set(gallery.items.filter((i) => i.url).map((i) => i.source_path));
        paintSelection();
      } else if (k.toLowerCase() === "d") {
        selectTile(gallery.selected, { scroll: false });
      } else return;
      ev.preventDefault();
      return;
    }
    const culling = cullingKey(ev);
    const opts = { range: ev.shiftKey };
    if (culling) cullChosen(culling);
    else if (k === "ArrowRight" || k === "j") selectTile(gallery.selected + 1, opts);
    else if (k === "ArrowLeft" || k === "k") selectTile(gallery.selected - 1, opts);
    else if (k === "ArrowDown") selectTile(gallery.selected + columns(), opts);
    else if (k === "ArrowUp") selectTile(gallery.selected - columns(), opts);
    else if (k === "Enter") {
      const item = gallery.items[gallery.selected];
      if (item && item.url) location.href = item.url;
    } else if (k === "a") bulkStatus("accepted");
    else if (k === "r") bulkStatus("rejected");
    else if (k === "d") bulkStatus("done");
    else if (k === "Escape") selectTile(gallery.selected, { scroll: false });
    else return;
    ev.preventDefault();
  });
  loadGallery();
}

// --- image view ---------------------------------------------------------------------------
const view = {
  payload: null,
  selected: 0,
  show: "after", // before, after or both (side by side)
  zoom: "fit", // fit or 1 (100%)
  overlays: { faces: true, crops: true, clip: false, level: true, subject: false },
  drafts: {}, // op_id -> crop box being edited
  draftDeliveries: {}, // "op_id:box" -> what the renditions would deliver from that draft (the server's sizing)
  drag: null,
  drawing: null, // a blur being drawn: { op_id } (null: a new one), and its box so far (sketch)
  sketch: null,
  strip: [], // the filmstrip's images (the gallery's filters)
  stripIndex: new Map(),
  prefetched: new Map(), // source_path -> payload promise
  syncing: false,
};
const CROP_COLOURS = ["#5ad1ff", "#ff9d3d", "#c792ff", "#6ef0a8"];

// A shift or a cast in mired, in words: "50 mired warmer" (+ is warmer), "neutral" within half a mired.
function miredWords(value, warm, cool) {
  if (Math.abs(value) < 0.5) return "neutral";
  return `${fmt(Math.abs(value), 0)} mired ${value > 0 ? warm : cool}`;
}

function opAmount(op) {
  const p = op.params;
  switch (op.kind) {
    case "exposure": return `${fmt(p.ev, 2, true)} EV`;
    case "brighten_face": return `${p.drawn ? "marked face" : `face ${p.face_index + 1}`}: ${fmt(p.ev, 2, true)} EV`;
    case "red_eye": return p.drawn ? "an eye a reviewer marked"
      : `face ${p.face_index + 1}: ${p.eyes.length === 2 ? "both eyes" : "an eye"}`;
    case "reduce_noise": return `luminance ${fmt(p.luminance, 2)}, colour ${fmt(p.colour, 2)}`;
    case "blur_face": return p.drawn ? "marked by a reviewer" : p.face_index == null ? "unsure face blurred"
      : `face ${p.face_index + 1} blurred`;
    case "white_balance": return (p.mired_shift == null ? `${fmt(p.temperature_shift_k, 0, true)} K` : miredWords(p.mired_shift, "warmer", "cooler"))
      + `, tint ${fmt(p.tint_shift, 1, true)}`;
    case "straighten": return `${fmt(p.angle_deg, 2, true)}° (${p.axis})`
      + (p.keystone ? `, keystone ${fmt(p.keystone.edge_lean_deg, 1)}° at the edges` : "");
    case "whiten_backdrop": return `${fmt(p.level, 0)} → 255`;
    case "lift_shadows": return `shadows ${fmt(p.ev, 2, true)} EV`;
    case "merge_bracket": return `${p.frames.length + 1} frames merged`;
    case "lens_correction": return `${p.lens_model}, ${fmt(p.focal_mm, 0)} mm`;
    case "crop": return `${cropAspect(p)} ${p.placement}` + (p.rotate_deg ? `, turned ${fmt(p.rotate_deg, 1, true)}°` : "");
    default: return p.check || "";
  }
}

function cropBox(op) {
  return view.drafts[op.op_id] || op.params.box;
}

// What the stage shows in fit: the image, widened to the crops padded beyond it (a packshot's canvas extended
// with its backdrop's colour), so a reviewer sees the frame as it is delivered. [x0, y0, x1, y1] in image pixels.
function stageExtent() {
  const { doc } = view.payload;
  const ext = [0, 0, doc.image.width, doc.image.height];
  if (view.zoom !== "fit" || !view.overlays.crops) return ext;
  for (const op of paddedCrops()) {
    const [x, y, w, hgt] = cropBox(op);
    ext[0] = Math.min(ext[0], x); ext[1] = Math.min(ext[1], y);
    ext[2] = Math.max(ext[2], x + w); ext[3] = Math.max(ext[3], y + hgt);
  }
  return ext;
}

function paddedCrops() {
  return view.payload.doc.operations.filter((o) => o.kind === "crop" && o.params.pad_rgb && !o.params.angle_deg &&
    o.review.status !== "rejected");
}

// A sweep's level against its brightest at x, y (fractions of the width and height, held to the frame): 2 to the
// power of the quadratic pad_falloff (coefficients of 1, x, y, x², xy, y²), at most 1, as the renderer pads with it.
function falloffLevel(c, x, y) {
  const [u, v] = [Math.min(1, Math.max(0, x)), Math.min(1, Math.max(0, y))];
  return Math.pow(2, Math.min(0, c[0] + u * (c[1] + c[3] * u + c[4] * v) + v * (c[2] + c[5] * v)));
}

// How one band of a padded crop ([x0, y0, x1, y1] beyond the W x H image) is filled, as the after picture shows
// it: white where the plan whitens the backdrop (the pad is the backdrop's colour), else that colour (linear, as
// decoded) encoded for sRGB; where the backdrop's light falls off (pad_falloff), at its level along the frame's edge
// the band carries on from (a gradient, held at its ends beyond the corners). Returns [fill, defs or null].
function padPaint(op, band, W, H, id) {
  const { doc } = view.payload;
  if (doc.operations.some((o) => o.kind === "whiten_backdrop" && o.review.status !== "rejected")) return ["rgb(255,255,255)", null];
  const enc = (v) => Math.round(255 * (v <= 0.0031308 ? 12.92 * v : 1.055 * Math.pow(v, 1 / 2.4) - 0.055));
  const colour = (k) => `rgb(${op.params.pad_rgb.map((v) => enc(Math.min(1, Math.max(0, v * k)))).join(",")})`;
  const c = op.params.pad_falloff;
  if (!c) return [colour(1), null];
  const across = band[3] <= 0 || band[1] >= H; // above or below the frame: its top or bottom edge, left to right
  const edge = across ? (band[3] <= 0 ? 0 : 1) : (band[2] <= 0 ? 0 : 1);
  const stops = [];
  for (let k = 0; k < 9; k++) {
    const t = k / 8;
    stops.push(h("stop", { offset: t, "stop-color": colour(across ? falloffLevel(c, t, edge) : falloffLevel(c, edge, t)) }));
  }
  const ends = across ? { x1: 0, y1: 0, x2: W, y2: 0 } : { x1: 0, y1: 0, x2: 0, y2: H };
  return [`url(#${id})`, h("defs", {}, h("linearGradient", { id, gradientUnits: "userSpaceOnUse", ...ends }, stops))];
}

function cropIndex(op) {
  return Math.max(0, view.payload.doc.operations.filter((o) => o.kind === "crop").indexOf(op));
}

function cropColour(op) {
  return CROP_COLOURS[cropIndex(op) % CROP_COLOURS.length];
}

// A crop's aspect as written, and as turned to the picture's orientation where the chart says so (orientation: source)
// or a reviewer turned it; a box being edited (a draft) says which way round it is.
function cropAspect(p, box) {
  const turned = box ? isTurnedBox(p.aspect, box) : p.aspect_turned;
  return p.aspect + (turned ? " as " + turnedAspect(p.aspect) : "");
}

function isSquare(aspect) {
  const [a, b] = aspect.split(":").map(Number);
  return a === b;
}

function turnedAspect(aspect) {
  return aspect.split(":").reverse().join(":");
}

function isTurnedBox(aspect, [, , w, hgt]) {
  const [a, b] = aspect.split(":").map(Number);
  return a !== b && (w > hgt) !== (a > b);
}

function cropName(op) {
  const names = (view.payload.renditions || {})[op.params.aspect] || [];
  return cropAspect(op.params, view.drafts[op.op_id]) + (names.length ? " · " + names.join(", ") : "");
}

// A crop that follows the picture (the chart's orientation: source) turned the other way round: the server places the
// turned box as the plan places a crop (the largest that cuts no face, nearest the crop's centre), drafted for the
// reviewer to check and save.
async function turnCrop(op) {
  const sp = view.payload.source_path;
  const box = cropBox(op).map((v) => v.toFixed(1)).join(",");
  const { status, data } = await api("GET",
    `/api/deliveries/${enc(sp)}?op=${encodeURIComponent(op.op_id)}&box=${box}&turn=1`);
  if (view.payload.source_path !== sp) return;
  if (status !== 200) return toast(data.error || `the crop could not be turned (${status})`, "warn");
  view.drafts[op.op_id] = data.box;
  view.draftDeliveries = { [draftKey(op)]: data };
  view.selected = view.payload.doc.operations.indexOf(op);
  renderAll();
}

function numberEditor(label, value, attrs, unit, onSet, cls) {
  const input = h("input", { type: "number", class: cls, value, "aria-label": label, ...attrs });
  const set = () => onSet(Number(input.value));
  input.addEventListener("keydown", (ev) => { if (ev.key === "Enter") set(); });
  return [h("label", { text: label + " " }, input, unit ? " " + unit : ""), h("button", { type: "button", class: "set-" + cls, text: "Set", onclick: set })];
}

function opEditor(op) {
  const p = op.params;
  const drawn = op.kind === "blur_face" || (["brighten_face", "red_eye"].includes(op.kind) && p.drawn) ? drawnEditor(op) : [];
  if (op.kind === "exposure" || op.kind === "brighten_face" || op.kind === "lift_shadows") {
    const min = op.kind === "lift_shadows" ? "0" : "-5";  // a shadow lift only lifts
    return h("div", { class: "edit" }, numberEditor("Amount", p.ev, { step: "0.05", min, max: "5" }, "EV",
      (ev) => send([{ op_id: op.op_id, ev }]), "ev"), ...drawn);
  }
  if (op.kind === "white_balance") {
    // In mired (+ warmer), the plan's own unit: even steps look alike at any light, where kelvin's do not
    // (a blue cast's correction is hundreds of thousands of kelvin). A document from before mired_shift: kelvin.
    const mired = p.mired_shift != null;
    const temp = mired
      ? h("input", { type: "number", class: "temp", step: "5", min: "-500", max: "500", value: p.mired_shift, "aria-label": "temperature shift in mired, + warmer" })
      : h("input", { type: "number", class: "temp", step: "50", value: p.temperature_shift_k, "aria-label": "temperature shift in K" });
    const tint = h("input", { type: "number", class: "tint", step: "0.5", min: "-100", max: "100", value: p.tint_shift, "aria-label": "tint shift" });
    const set = () => send([{ op_id: op.op_id, [mired ? "mired_shift" : "temperature_shift_k"]: Number(temp.value), tint_shift: Number(tint.value) }]);
    for (const i of [temp, tint]) i.addEventListener("keydown", (ev) => { if (ev.key === "Enter") set(); });
    return h("div", { class: "edit" }, h("label", { text: "Temperature " }, temp, mired ? " mired (+ warmer)" : " K"), h("label", { text: "Tint " }, tint),
      h("button", { type: "button", class: "set-wb", text: "Set", onclick: set }));
  }
  if (op.kind === "blur_face" || op.kind === "red_eye") return drawn.length ? h("div", { class: "edit" }, ...drawn) : null;
  if (op.kind === "straighten") {
    return h("div", { class: "edit" }, numberEditor("Angle", p.angle_deg, { step: "0.1", min: "-45", max: "45" }, "°",
      (angle_deg) => send([{ op_id: op.op_id, angle_deg }]), "angle"));
  }
  if (op.kind === "crop") {
    const drafted = !!view.drafts[op.op_id];
    const turn = (d) => send([{ op_id: op.op_id, rotate_deg: Math.round(((p.rotate_deg || 0) + d) * 100) / 100 }]);
    // A crop the chart lets follow the picture may be turned the other way round: the aspect it would turn to.
    const turnable = p.orientation === "source" && !isSquare(p.aspect);
    const other = isTurnedBox(p.aspect, cropBox(op)) ? p.aspect : turnedAspect(p.aspect);
    if (op.review.status === "rejected") { // nothing to move: its renditions are cut centred (accept it to edit it)
      return h("div", { class: "edit" }, deliveries(op, false));
    }
    return h("div", { class: "edit" },
      h("span", { class: "hint", text: "Drag the frame; wheel or −/+ to resize; ↺ ↻ turn it." }),
      h("button", { type: "button", text: "−", title: "smaller", onclick: () => scaleCrop(op, 1 / 1.05) }),
      h("button", { type: "button", text: "+", title: "larger", onclick: () => scaleCrop(op, 1.05) }),
      h("button", { type: "button", class: "turn-left", text: "↺", title: "turn 0.5° counter-clockwise", onclick: () => turn(0.5) }),
      h("button", { type: "button", class: "turn-right", text: "↻", title: "turn 0.5° clockwise", onclick: () => turn(-0.5) }),
      ...numberEditor("Turn", p.rotate_deg || 0, { step: "0.1", min: "-45", max: "45" }, "°",
        (rotate_deg) => send([{ op_id: op.op_id, rotate_deg }]), "rotate"),
      turnable
        ? h("button", { type: "button", class: "turn-crop", text: `Turn to ${other}`, onclick: () => turnCrop(op),
                        title: "Turn the crop the other way round (the chart lets it follow the picture); then save" })
        : null,
      h("button", { type: "button", class: "save-crop", text: "Save crop", disabled: !drafted,
                    onclick: () => send([{ op_id: op.op_id, box: view.drafts[op.op_id].map((v) => Math.round(v * 10) / 10) }]) }),
      drafted ? h("button", { type: "button", text: "Drop edit", onclick: () => { delete view.drafts[op.op_id]; renderAll(); } }) : null,
      deliveries(op, drafted),
    );
  }
  return null;
}

// What the crop's renditions deliver, as the renderer sizes them, and what it does to the faces it frames (judged as
// the plan judges its crops): from the saved box (the payload's deliveries and crop_faces), or from a draft being
// moved, resized or turned (asked of the server, /api/deliveries), so a reviewer sees what the exports would be
// before saving: one enlarged beyond the chart's limit, a head the crop would cut.
function deliveries(op, drafted) {
  let rows = (view.payload.deliveries || {})[op.op_id] || [];
  let faces = (view.payload.crop_faces || {})[op.op_id];
  // A rejected crop's renditions are still cut to its aspect: centred, as the renderer falls back to.
  let hint = op.review.status === "rejected" ? "Rejected: the renditions are cut centred instead:" : "Delivered:";
  if (drafted) {
    const key = draftKey(op);
    const draft = view.draftDeliveries[key];
    if (draft) { rows = draft.deliveries; faces = draft.faces; hint = "Delivered from this crop, once saved:"; }
    else { hint = "Delivered from the saved crop (reading this one's…):"; fetchDraftDeliveries(op, key); }
  }
  const line = (d) => {
    const size = `${d.name}: ${d.width}×${d.height} px, ${fmt(d.scale, 2)}×`;
    if (!d.beyond) return h("li", { text: size });
    const asked = `${d.asked[0]}×${d.asked[1]}`;
    if (d.action !== "flag") { // the chart's own answer: no enlargement, a smaller file
      return h("li", { class: "smaller", text: `${size}: ${asked} would enlarge beyond ${fmt(d.max_upscale, 1)}×, `
                                              + "delivered smaller" });
    }
    return h("li", { class: "beyond",
                     text: `${size}: enlarged beyond ${fmt(d.max_upscale, 1)}×, delivered as asked (flag)` });
  };
  const items = rows.map(line);
  if (faces && faces.framed) {
    const cut = faces.cut.join(", "), out = faces.left_out.join(", ");
    if (cut) items.push(h("li", { class: "beyond faces-cut", text: `cuts face(s) ${cut}: check the framing` }));
    if (out) items.push(h("li", { class: "faces-out", text: `leaves face(s) ${out} out (of ${faces.framed} framed)` }));
    if (!faces.cut.length && !faces.left_out.length) {
      items.push(h("li", { class: "faces-whole", text: `all ${faces.framed} face(s) whole` }));
    }
  }
  if (!items.length) return null;
  return h("div", { class: "deliveries" }, h("span", { class: "hint", text: hint }), h("ul", {}, ...items));
}

function draftKey(op) {
  return op.op_id + ":" + view.drafts[op.op_id].map((v) => v.toFixed(1)).join(",");
}

async function fetchDraftDeliveries(op, key) {
  if (view.readingDeliveries === key) return;
  view.readingDeliveries = key;
  const box = key.slice(op.op_id.length + 1);
  const sp = view.payload.source_path;
  const { status, data } = await api("GET", `/api/deliveries/${enc(sp)}?op=${encodeURIComponent(op.op_id)}&box=${box}`);
  if (view.readingDeliveries === key) view.readingDeliveries = null;
  if (status !== 200 || view.payload.source_path !== sp) return;
  view.draftDeliveries = { [key]: data }; // the latest draft's only
  if (view.drafts[op.op_id] && draftKey(op) === key) renderOps();
}

// A region drawn on the picture (a blur, a face lift a reviewer marked): draw its box again; take a drawn one away.
function drawnEditor(op) {
  const drawing = view.drawing && view.drawing.op_id === op.op_id;
  return [
    h("button", { type: "button", class: "redraw", text: drawing ? "Drawing… (Esc)" : "Redraw",
                  title: "Drag a new box over the face on the picture", onclick: () => startDrawing(op.op_id, op.kind) }),
    op.review.added ? h("button", { type: "button", class: "remove-drawn", text: "Remove",
                                    onclick: () => send([{ op_id: op.op_id, remove: true }]) }) : null,
  ];
}

// A plan's flag on a crop (an upscale, or faces it cuts or leaves out) is judged on the crop as planned: once a
// reviewer moves, resizes or turns the crop, what it does now (the payload's deliveries and crop_faces) is said under
// the flag's reason.
function flagNow(op) {
  const p = op.params;
  if (op.kind !== "flag" || !["upscale", "crop"].includes(p.check)) return null;
  const crop = view.payload.doc.operations.find((o) => o.kind === "crop" && o.params.aspect === p.aspect);
  const edited = crop && ((crop.review.params || {}).box || crop.review.status === "rejected"); // rejected: centred
  if (!edited) return null; // the crop as planned: the flag says it
  if (p.check === "crop") {
    const faces = (view.payload.crop_faces || {})[crop.op_id];
    if (!faces) return null;
    const cut = faces.cut.join(", "), out = faces.left_out.join(", ");
    const words = [cut ? `cuts face(s) ${cut}` : "", out ? `leaves face(s) ${out} out` : ""].filter(Boolean);
    return h("p", { class: "now" + (cut ? " beyond" : ""), text: "The crop as it stands now: "
      + (words.length ? words.join(" and ") : `all ${faces.framed} face(s) whole`) });
  }
  const now = ((view.payload.deliveries || {})[crop.op_id] || []).find((d) => d.name === p.rendition);
  if (!now) return null;
  return h("p", { class: "now" + (now.beyond ? " beyond" : ""), text: `The crop as it stands now: ${now.width}×`
    + `${now.height} px, ${fmt(now.scale, 2)}× ` + (now.beyond ? `(still beyond ${fmt(now.max_upscale, 1)}×)`
      : `(within ${fmt(now.max_upscale, 1)}×: no longer enlarged beyond it)`) });
}

// The change that takes an operation's edited amounts back to the plan's (the payload's planned values): an
// exposure or a lift's EV, a crop's box and own turn, a straightening's angle, a white balance's shift and tint. The
// rest follows from them (a white balance's gains, a turned crop's aspect). None for an operation a reviewer added.
function planChange(op) {
  const planned = (view.payload.planned || {})[op.op_id];
  if (!planned || (op.review || {}).added) return null;
  const change = { op_id: op.op_id };
  for (const name of ["ev", "box", "tint_shift"]) if (name in planned) change[name] = planned[name];
  if ("rotate_deg" in planned) change.rotate_deg = planned.rotate_deg ?? 0; // none planned: the turn goes
  if (op.kind === "straighten" && "angle_deg" in planned) change.angle_deg = planned.angle_deg;
  if ("mired_shift" in planned) change.mired_shift = planned.mired_shift;
  else if ("temperature_shift_k" in planned) change.temperature_shift_k = planned.temperature_shift_k;
  return Object.keys(change).length > 1 ? change : null;
}

function backToPlan(op) {
  const change = planChange(op);
  if (!change) return null;
  const what = Object.entries(change).filter(([k]) => k !== "op_id")
    .map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(", ") : v}`).join("; ");
  return h("button", { type: "button", class: "back-to-plan", text: "Plan's values",
                       title: `Back to the plan's: ${what}`,
                       onclick: () => { delete view.drafts[op.op_id]; send([change]); } });
}

// Who carries an operation out: the renderer, a retoucher, or the renderer once a person accepts it (a proposal).
function whoApplies(op) {
  if (op.applied_by === "renderer") return "automatic";
  if (!op.params.render_on_accept) return "by a retoucher";
  return (op.review || {}).status === "accepted" ? "proposed, accepted: applied" : "proposed: applied once accepted";
}

function renderOps() {
  const { doc } = view.payload;
  const list = document.getElementById("ops");
  list.replaceChildren(...doc.operations.map((op, i) => {
    const r = op.review;
    const actions = h("div", { class: "actions" },
      h("button", { type: "button", class: "accept", "data-act": "accepted", text: "Accept", title: "a" }),
      h("button", { type: "button", class: "reject", "data-act": "rejected", text: "Reject", title: "r" }),
      h("button", { type: "button", class: "done", "data-act": "done", text: "Done", title: "d" }),
      r.status !== "pending" ? h("button", { type: "button", "data-act": "pending", text: "Reset" }) : null,
      backToPlan(op),
    );
    actions.addEventListener("click", (ev) => {
      const act = ev.target.dataset.act;
      if (act) send([{ op_id: op.op_id, status: act }]);
    });
    const comment = h("textarea", { class: "comment", rows: "2", maxlength: "2000", placeholder: "Comment" });
    comment.value = r.comment || "";
    const saveComment = h("button", { type: "button", class: "save-comment", text: "Save comment",
                                      onclick: () => send([{ op_id: op.op_id, comment: comment.value }]) });
    const swatch = op.kind === "crop" ? h("span", { class: "swatch", style: `background:${cropColour(op)}` }) : null;
    const li = h("li", { class: `op kind-${op.kind} status-${r.status}` + (i === view.selected ? " selected" : ""),
                         "data-op": op.op_id },
      h("div", { class: "head" },
        swatch,
        h("span", { class: "kind", text: op.kind.replace("_", " ") }),
        h("span", { class: "amount", text: opAmount(op) }),
        h("span", { class: "status " + r.status, text: r.status })),
      h("p", { class: "reason", text: op.reason }),
      flagNow(op),
      h("div", { class: "meta", text:
        `${whoApplies(op)} · confidence ${fmt(op.confidence)}` +
        (op.measured !== null ? ` · measured ${fmt(op.measured)}` : "") +
        (op.target !== null ? ` · target ${fmt(op.target)}` : "") +
        (op.kind === "crop" ? ` · ${cropName(op)}` : "") }),
      r.by ? h("div", { class: "by", text: `${r.status} by ${r.by} · ${r.at}` }) : null,
      actions, opEditor(op),
      h("div", { class: "comment-row" }, comment, saveComment),
    );
    li.addEventListener("click", (ev) => {
      if (ev.target.closest("button, input, textarea")) return;
      view.selected = i;
      renderAll();
    });
    return li;
  }));
}

function renderMeasurements() {
  const { doc } = view.payload;
  const m = doc.measurements;
  const exposure = doc.operations.find((o) => o.kind === "exposure");
  const white = doc.operations.find((o) => o.kind === "white_balance");
  const pending = (op) => op.params.render_on_accept && (op.review || {}).status !== "accepted";
  // One number: the offset the plan corrects (the manifest's exposure_ev), its verdict and what it keyed on.
  const rows = [
    ["Exposure", `${fmt(m.exposure_ev, 2, true)} EV, keyed on ${m.exposure_keyed_on || "–"} (${m.exposure_verdict || "–"})`
      + (exposure ? ` → correction ${fmt(exposure.params.ev, 2, true)} EV`
        + (pending(exposure) ? " proposed, not applied" : "")
        : ", no correction")],
    ["Exposure, whole frame", `${fmt(m.exposure_meter_ev, 2, true)} EV (the meter alone`
      + (m.exposure_backdrop_pct ? `, on the subject: a white backdrop of ${fmt(m.exposure_backdrop_pct, 0)} % left out)` : ")")],
    ["Highlights", `${fmt(m.exposure_white_ev, 2, true)} EV (the white point; about +0.30 when clipped)`],
    ["Clipped highlights", `${fmt(m.clipped_highlights_pct)} %`
      + (m.exposure_unclipped_key_ev == null ? ""
        : `; the rest alone keys at ${fmt(m.exposure_unclipped_key_ev, 2, true)} EV`)],
    // The cast's mired reading; the kelvin column of an older document caps a cast bluer than infinite kelvin.
    ["White balance", m.wb_cast_mired != null
      ? `neutrals read ${miredWords(m.wb_cast_mired, "warm", "cool")}`
        + (m.wb_uncertainty_mired != null ? ` (±${fmt(m.wb_uncertainty_mired, 0)})` : "")
        + (white && white.params.mired_shift != null
          ? ` → correction ${fmt(white.params.mired_shift, 0, true)} mired`
            + (pending(white) ? " proposed, not applied" : "")
          : "")
      : m.wb_temperature_shift_k == null ? "–"
      : `neutrals read ${miredWords(1e6 / (6504 + m.wb_temperature_shift_k) - 1e6 / 6504, "warm", "cool")}`],
    ["Sharpness", fmt(m.sharpness, 1)],
    ["Horizon / verticals", `${fmt(m.horizon_tilt_deg, 2, true)}° / ${fmt(m.verticals_tilt_deg, 2, true)}°`],
    ["Size", `${doc.image.width} × ${doc.image.height}` + (doc.image.camera_model ? ` · ${doc.image.camera_model}` : "")],
    ["Faces", `${doc.faces.length} found, ${doc.faces_to_brighten} to brighten`],
  ];
  document.getElementById("measurements").replaceChildren(
    ...rows.map(([k, v]) => h("tr", {}, h("th", { text: k }), h("td", { text: v }))));
}

// Where a point of the corrected frame (after a keystone's correction) lies in the picture as shot: the straighten
// operation's keystone carries the homography (to_source, row by row), applied when the renderer undoes it (its own
// turn, or a proposed one once accepted: until then the crops lie in the picture as shot).
function asShot(x, y) {
  const st = view.payload.doc.operations.find((o) => o.kind === "straighten");
  const applies = st && st.review.status !== "rejected"
    && (st.applied_by === "renderer" || (st.params.render_on_accept && st.review.status === "accepted"));
  const m = applies && st.params.keystone && st.params.keystone.to_source;
  if (!m) return [x, y];
  const w = m[6] * x + m[7] * y + m[8];
  return [(m[0] * x + m[1] * y + m[2]) / w, (m[3] * x + m[4] * y + m[5]) / w];
}

function rotatePoint(cx, cy, x, y, deg) {
  // Counter-clockwise on screen (y down), as pipeline/imaging/geometry.py turns crops.
  const a = (deg * Math.PI) / 180;
  const dx = x - cx, dy = y - cy;
  return [cx + dx * Math.cos(a) + dy * Math.sin(a), cy - dx * Math.sin(a) + dy * Math.cos(a)];
}

function renderOverlay() {
  const svg = document.getElementById("overlay");
  if (!svg || !view.payload) return;
  const { doc } = view.payload;
  const W = doc.image.width, H = doc.image.height;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  // Image pixels per screen pixel: strokes and labels keep their size on screen.
  const shown = svg.getBoundingClientRect().width;
  const unit = shown ? W / shown : Math.max(W, H) / 1000;
  const children = [];
  const selectedOp = doc.operations[view.selected];
  const active = (op) => op.review.status !== "rejected";

  if (view.overlays.subject) {
    // The subject's map (the manifest's saliency_map, "WxH:" and a byte a cell): under everything else, each cell
    // as strong as the subject reads there. The crops placed on the subject hold the most of it.
    const [size, cells] = (doc.measurements.saliency_map || ":").split(":");
    const [cw, ch] = size.split("x").map(Number);
    if (cw > 0 && ch > 0 && cells.length === 2 * cw * ch) {
      const g = h("g", { class: "subject" }, h("title", { text: "Where the subject is: the crops placed on the subject hold the most of it" }));
      for (let j = 0; j < ch; j++) {
        for (let i = 0; i < cw; i++) {
          const v = parseInt(cells.substr(2 * (j * cw + i), 2), 16) / 255;
          if (v > 0.02) g.append(h("rect", { class: "subject-cell", x: (i * W) / cw, y: (j * H) / ch, width: W / cw, height: H / ch, "fill-opacity": (0.6 * v).toFixed(3) }));
        }
      }
      children.push(g);
    }
  }
  if (view.overlays.faces) {
    const brighten = {};
    for (const op of doc.operations) if (op.kind === "brighten_face" && !op.params.drawn) brighten[op.params.face_index] = op;
    for (const f of doc.faces) {
      const [x, y, w, hgt] = f.box;
      const op = brighten[f.face_index];
      const cls = "face" + (op ? (active(op) ? " brighten" : " rejected") : "") +
        (op && selectedOp === op ? " selected" : "");
      const label = `${f.face_index + 1}` + (op ? ` ${fmt(op.params.ev, 2, true)} EV` : "");
      const tip = `face ${f.face_index + 1}: measured ${fmt(f.exposure_ev, 2, true)} EV, score ${fmt(f.score)}` +
        (f.clipped_pct != null ? `, skin ${fmt(f.clipped_pct, 1)} % clipped` : "") +
        (f.too_small ? ", too small" : "") + (op ? `; brighten ${fmt(op.params.ev, 2, true)} EV (${op.review.status})` : "");
      children.push(h("g", { class: cls, "data-face": f.face_index },
        h("title", { text: tip }),
        h("rect", { x, y, width: w, height: hgt, "stroke-width": 2 * unit }),
        op ? h("ellipse", { cx: x + w / 2, cy: y + hgt / 2, rx: w / 2, ry: hgt / 2, "stroke-width": 1.5 * unit,
                            "stroke-dasharray": `${6 * unit} ${4 * unit}` }) : null,
        h("text", { x: x, y: Math.max(14 * unit, y - 4 * unit), "font-size": 14 * unit, text: label })));
    }
  }
  if (view.overlays.faces) {
    // Other regions a retoucher works on, with the faces: a flag's region (a ColorChecker to remove).
    for (const op of doc.operations) {
      const r = op.params.region;
      if (op.kind !== "flag" || !Array.isArray(r) || r.length !== 4) continue;
      const [x0, y0, x1, y1] = [r[0] * W, r[1] * H, r[2] * W, r[3] * H];
      const name = op.params.check === "colour_checker" ? "ColorChecker" : op.params.check;
      children.push(h("g", { class: "region" + (active(op) ? "" : " rejected") },
        h("title", { text: op.reason }),
        h("rect", { x: x0, y: y0, width: x1 - x0, height: y1 - y0, "stroke-width": 2 * unit }),
        h("text", { x: x0 + 4 * unit, y: y1 - 6 * unit, "font-size": 14 * unit, text: name })));
    }
  }
  if (view.overlays.faces || view.drawing) {
    // The faces blurred for privacy: the ellipse the renderer replaces (inscribed in the head's box).
    for (const op of doc.operations) {
      if (op.kind !== "blur_face") continue;
      const [x, y, w, hgt] = op.params.box;
      const sel = selectedOp === op;
      const cls = "blur" + (active(op) ? "" : " rejected") + (sel ? " selected" : "");
      const g = h("g", { class: cls, "data-op": op.op_id },
        h("title", { text: `${opAmount(op)} (${op.review.status})` }),
        h("ellipse", { cx: x + w / 2, cy: y + hgt / 2, rx: w / 2, ry: hgt / 2, "stroke-width": (sel ? 3 : 1.5) * unit,
                       "stroke-dasharray": `${4 * unit} ${3 * unit}` }),
        h("text", { x: x + w / 2, y: y + hgt + 14 * unit, "font-size": 12 * unit, "text-anchor": "middle",
                    text: op.params.drawn ? "blur (drawn)" : "blur" }));
      children.push(g);
    }
    for (const op of doc.operations) {  // the lifts a reviewer drew (the plan's are drawn on their faces above)
      if (op.kind !== "brighten_face" || !op.params.drawn) continue;
      const [x, y, w, hgt] = op.params.box;
      const cls = "face brighten drawn" + (active(op) ? "" : " rejected") + (selectedOp === op ? " selected" : "");
      children.push(h("g", { class: cls, "data-op": op.op_id },
        h("title", { text: `${opAmount(op)} (${op.review.status})` }),
        h("ellipse", { cx: x + w / 2, cy: y + hgt / 2, rx: w / 2, ry: hgt / 2, "stroke-width": 2 * unit,
                       "stroke-dasharray": `${6 * unit} ${4 * unit}` }),
        h("text", { x: x, y: Math.max(14 * unit, y - 4 * unit), "font-size": 14 * unit,
                    text: `marked ${fmt(op.params.ev, 2, true)} EV` })));
    }
    for (const op of doc.operations) {  // red eyes taken back to dark: a ring round each pupil
      if (op.kind !== "red_eye") continue;
      const cls = "redeye" + (active(op) ? "" : " rejected") + (selectedOp === op ? " selected" : "");
      children.push(h("g", { class: cls, "data-op": op.op_id }, h("title", { text: `red eye: ${opAmount(op)} (${op.review.status})` }),
        ...op.params.eyes.map(([cx, cy, r]) => h("circle", { cx, cy, r: Math.max(r, 3 * unit), "stroke-width": 1.5 * unit }))));
    }
    if (view.sketch) {
      const [x, y, w, hgt] = view.sketch;
      children.push(h("g", { class: "blur sketch" },
        h("rect", { x, y, width: w, height: hgt, "stroke-width": 1.5 * unit }),
        h("ellipse", { cx: x + w / 2, cy: y + hgt / 2, rx: w / 2, ry: hgt / 2, "stroke-width": 2 * unit })));
    }
  }
  // Shown beyond the image only while the stage is widened for padded crops (fit: stageExtent).
  const widened = view.extent && (view.extent[0] < 0 || view.extent[1] < 0 || view.extent[2] > W || view.extent[3] > H);
  svg.classList.toggle("padded", Boolean(widened));
  if (view.overlays.crops && widened) {
    // The pad, under the frames: what the crop adds beyond the image, in the colour it is delivered with.
    paddedCrops().forEach((op, n) => {
      const [x, y, w, hgt] = cropBox(op);
      const [x1, y1] = [x + w, y + hgt];
      // The crop less the image: the bands above and below it, then beside it.
      const bands = [[x, y, x1, Math.min(y1, 0)], [x, Math.max(y, H), x1, y1],
        [x, Math.max(y, 0), Math.min(x1, 0), Math.min(y1, H)], [Math.max(x, W), Math.max(y, 0), x1, Math.min(y1, H)]];
      bands.filter(([a, b, c, e]) => c > a && e > b).forEach((band, k) => {
        const [a, b, c, e] = band;
        const [fill, defs] = padPaint(op, band, W, H, `pad-${n}-${k}`);
        if (defs) children.push(defs);
        children.push(h("path", { class: "pad", fill, d: `M${a},${b}H${c}V${e}H${a}Z` },
          h("title", { text: `${cropName(op)}: padded beyond the frame with the backdrop's colour` })));
      });
    });
  }
  if (view.overlays.crops) {
    for (const op of doc.operations) {
      if (op.kind !== "crop") continue;
      // A rejected crop's renditions are still cut to its aspect, centred (the payload's crop_frames): drawn dashed.
      const fallback = !active(op) && op.review.status === "rejected" && (view.payload.crop_frames || {})[op.op_id];
      if (!active(op) && !fallback) continue;
      const [x, y, w, hgt] = fallback ? fallback.box : cropBox(op);
      const cx = x + w / 2, cy = y + hgt / 2, angle = (fallback ? fallback.angle_deg : op.params.angle_deg) || 0;
      // A keystone undone: the crop lies in the corrected frame; drawn over the picture as shot, where its pixels come
      // from (a trapezoid).
      const pts = [[x, y], [x + w, y], [x + w, y + hgt], [x, y + hgt]]
        .map(([px, py]) => asShot(...rotatePoint(cx, cy, px, py, angle)));
      const sel = selectedOp === op;
      const colour = cropColour(op);
      const g = h("g", { class: "crop" + (sel ? " selected" : "") + (view.drafts[op.op_id] ? " draft" : "")
                                + (fallback ? " fallback" : ""), "data-op": op.op_id, style: `--crop:${colour}` },
        h("title", { text: fallback ? `${cropName(op)}: rejected, its renditions cut centred`
                                    : `${cropName(op)} crop (${op.review.status})` }),
        h("polygon", { points: pts.map((p) => p.join(",")).join(" "), "stroke-width": (sel ? 3 : 1.5) * unit }),
        // Labels one under the other: crops often share their top edge. A crop padded beyond the frame has its
        // label where the frame begins (its corner is out of sight).
        h("text", { x: Math.max(pts[0][0], 0) + 6 * unit, y: Math.max(pts[0][1], 0) + (18 + 18 * cropIndex(op)) * unit,
                    "font-size": 14 * unit, text: cropName(op) + (op.params.pad_rgb ? " · padded" : "")
                      + (fallback ? " · rejected: centred" : ""),
                    transform: `rotate(${-angle} ${Math.max(pts[0][0], 0)} ${Math.max(pts[0][1], 0)})` }));
      if (!fallback) g.addEventListener("pointerdown", (ev) => startDrag(ev, op));
      children.push(g);
    }
  }
  if (view.overlays.level) {
    const st = doc.operations.find((o) => o.kind === "straighten");
    if (st) {
      const t = st.params.angle_deg, cx = W / 2, cy = H / 2, L = Math.max(W, H);
      const a = (t * Math.PI) / 180;
      const level = st.params.axis === "verticals"
        ? h("line", { x1: cx, y1: 0, x2: cx, y2: H, class: "level" })
        : h("line", { x1: 0, y1: cy, x2: W, y2: cy, class: "level" });
      // The measured line: rising to the right by t (horizon), or leaning right at the top (verticals).
      const tilt = st.params.axis === "verticals"
        ? h("line", { x1: cx - L * Math.sin(a), y1: cy + L * Math.cos(a), x2: cx + L * Math.sin(a), y2: cy - L * Math.cos(a), class: "tilt" })
        : h("line", { x1: cx - L * Math.cos(a), y1: cy + L * Math.sin(a), x2: cx + L * Math.cos(a), y2: cy - L * Math.sin(a), class: "tilt" });
      // Converging verticals (a keystone undone): the lines through their vanishing point at a sixth of the width
      // from each edge, as measured.
      const ks = st.params.keystone, lines = [level, tilt];
      if (ks && ks.convergence) {
        const lean = (ks.lean_deg * Math.PI) / 180;
        const d = -L * 180 / (Math.PI * ks.convergence) / Math.cos(lean);  // + = above the centre
        const vx = cx + d * Math.sin(lean), vy = cy - d * Math.cos(lean);
        for (const x of [W / 6, (5 * W) / 6]) {
          // The line from (x, cy) to the point, where it crosses y = 0 and y = H.
          const k = (0 - cy) / (vy - cy), k2 = (H - cy) / (vy - cy);
          lines.push(h("line", { x1: x + k * (vx - x), y1: 0, x2: x + k2 * (vx - x), y2: H, class: "tilt" }));
        }
      }
      for (const line of lines) line.setAttribute("stroke-width", 1.5 * unit);
      children.push(h("g", { class: "guide" + (active(st) ? "" : " rejected") }, ...lines,
        h("text", { x: 8 * unit, y: cy - 8 * unit, "font-size": 14 * unit, text: `${st.params.axis} ${fmt(t, 2, true)}°` })));
    }
  }
  svg.replaceChildren(...children);
}

// --- the stage: one pane, or before and after side by side; fit or 100% ------------------------
// "proposed": the corrections with every pending proposal accepted (what an accept would deliver).
const PANE_LABELS = { before: "Before", after: "After", proposed: "After, proposals accepted" };

function paneVariants() {
  return view.show === "both" ? ["before", "after"] : [view.show];
}

function buildStage() {
  const stage = document.getElementById("stage");
  stage.classList.toggle("both", view.show === "both");
  stage.classList.toggle("zoomed", view.zoom !== "fit");
  const panes = paneVariants().map((variant) => {
    const withOverlay = variant === "after" || view.show !== "both";
    const base = h("img", { class: "base", alt: "", id: withOverlay ? "photo" : null, draggable: "false" });
    const canvas = h("div", { class: "canvas" }, base, h("div", { class: "tiles" }),
      h("img", { class: "clip", alt: "", id: withOverlay ? "clip" : null, hidden: true }),
      withOverlay ? h("svg", { id: "overlay", class: "overlay", xmlns: SVG_NS, preserveAspectRatio: "none" }) : null);
    const viewport = h("div", { class: "viewport" }, canvas);
    return h("div", { class: "pane", "data-variant": variant }, viewport,
      h("span", { class: "pane-label", text: PANE_LABELS[variant] }));
  });
  stage.replaceChildren(...panes);
  for (const pane of panes) setupPane(pane);
  setupDrag();
}

function layoutStage() {
  if (!view.payload) return;
  const { width: W, height: H } = view.payload.doc.image;
  const stage = document.getElementById("stage");
  const panes = [...stage.querySelectorAll(".pane")];
  const roomW = (stage.clientWidth - 8 * (panes.length - 1)) / panes.length;
  const roomH = Math.max(240, window.innerHeight - stage.getBoundingClientRect().top - 150);
  const dpr = window.devicePixelRatio || 1;
  // Fit: the room there is, never above 100% (a small source is not blown up); the image and the crops padded
  // beyond it (stageExtent), the image placed in it.
  const [x0, y0, x1, y1] = stageExtent();
  const EW = x1 - x0, EH = y1 - y0;
  const s = view.zoom === "fit" ? Math.min(roomW / EW, roomH / EH, 1 / dpr) : 1 / dpr;
  for (const pane of panes) {
    const viewport = pane.querySelector(".viewport");
    const canvas = pane.querySelector(".canvas");
    viewport.style.width = `${Math.floor(view.zoom === "fit" ? EW * s : roomW)}px`;
    viewport.style.height = `${Math.floor(view.zoom === "fit" ? EH * s : Math.min(roomH, H * s))}px`;
    canvas.style.width = `${W * s}px`;
    canvas.style.height = `${H * s}px`;
    canvas.style.marginLeft = `${-x0 * s}px`;
    canvas.style.marginTop = `${-y0 * s}px`;
  }
  view.scale = s;
  view.extent = [x0, y0, x1, y1];
}

function renderImage() {
  const p = view.payload;
  if (view.show === "proposed" && !p.previews.proposed) { // nothing pending here (any more)
    view.show = "after";
    document.getElementById("stage").replaceChildren();
  }
  if (!document.querySelector("#stage .pane")) buildStage();
  layoutStage();
  for (const pane of document.querySelectorAll("#stage .pane")) {
    const variant = pane.dataset.variant;
    const base = pane.querySelector("img.base");
    const src = p.previews[variant] || p.previews.after;
    if (base.getAttribute("src") !== src) base.setAttribute("src", src);
    const clip = pane.querySelector("img.clip");
    clip.hidden = !view.overlays.clip;
    if (view.overlays.clip && clip.getAttribute("src") !== p.previews.clip) clip.setAttribute("src", p.previews.clip);
    loadTiles(pane);
  }
  for (const [id, on] of [["show-before", view.show === "before"], ["show-after", view.show === "after"],
    ["show-both", view.show === "both"], ["show-proposed", view.show === "proposed"], ["zoom-fit", view.zoom === "fit"],
    ["zoom-100", view.zoom !== "fit"]]) {
    document.getElementById(id).classList.toggle("on", on);
  }
  document.getElementById("show-proposed").hidden = !p.previews.proposed;
  for (const [name, on] of Object.entries(view.overlays)) document.getElementById("ov-" + name).checked = on;
}

// The full-resolution tiles that cover what the viewport shows (100% only).
function loadTiles(pane) {
  const layer = pane.querySelector(".tiles");
  const variant = pane.dataset.variant;
  const key = view.payload.tiles.url.split("?k=")[1] + "/" + variant;
  if (layer.dataset.key !== key || view.zoom === "fit") {
    layer.replaceChildren();
    layer.dataset.key = key;
  }
  if (view.zoom === "fit") return;
  const { width: W, height: H } = view.payload.doc.image;
  const T = view.payload.tiles.size, s = view.scale, step = T * s;
  const viewport = pane.querySelector(".viewport");
  const c0 = Math.max(0, Math.floor(viewport.scrollLeft / step));
  const r0 = Math.max(0, Math.floor(viewport.scrollTop / step));
  const c1 = Math.min(Math.ceil(W / T) - 1, Math.floor((viewport.scrollLeft + viewport.clientWidth) / step));
  const r1 = Math.min(Math.ceil(H / T) - 1, Math.floor((viewport.scrollTop + viewport.clientHeight) / step));
  for (let row = r0; row <= r1; row++) {
    for (let col = c0; col <= c1; col++) {
      const id = `${col}/${row}`;
      if (layer.querySelector(`[data-tile="${id}"]`)) continue;
      const url = view.payload.tiles.url.replace("{variant}", variant).replace("{scale}", "1")
        .replace("{col}", col).replace("{row}", row);
      layer.append(h("img", { class: "ztile", "data-tile": id, src: url, alt: "", draggable: "false",
        style: `left:${col * step}px;top:${row * step}px;width:${Math.min(T, W - col * T) * s}px;height:${Math.min(T, H - row * T) * s}px` }));
    }
  }
}

function setupPane(pane) {
  const viewport = pane.querySelector(".viewport");
  viewport.addEventListener("scroll", () => {
    loadTiles(pane);
    if (view.syncing) return;
    view.syncing = true; // side by side: the other pane follows
    for (const other of document.querySelectorAll("#stage .viewport")) {
      if (other !== viewport) { other.scrollLeft = viewport.scrollLeft; other.scrollTop = viewport.scrollTop; }
    }
    requestAnimationFrame(() => (view.syncing = false));
  });
  // Click: zoom to 100% at that point, or back to fit; drag: pan.
  let press = null;
  viewport.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0 || view.drag) return;
    if (view.drawing) {  // a blur's box: from here to where the button is let go
      const at = imagePoint(pane, ev);
      view.drawing.from = at;
      view.sketch = [at[0], at[1], 0, 0];
      viewport.setPointerCapture(ev.pointerId);
      ev.preventDefault();
      return;
    }
    press = { x: ev.clientX, y: ev.clientY, left: viewport.scrollLeft, top: viewport.scrollTop, moved: false };
    viewport.setPointerCapture(ev.pointerId);
  });
  viewport.addEventListener("pointermove", (ev) => {
    if (view.drawing && view.drawing.from) {
      const [x0, y0] = view.drawing.from, [x1, y1] = imagePoint(pane, ev);
      view.sketch = [Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0)];
      renderOverlay();
      return;
    }
    if (!press) return;
    const dx = ev.clientX - press.x, dy = ev.clientY - press.y;
    if (Math.abs(dx) + Math.abs(dy) > 4) press.moved = true;
    if (press.moved && view.zoom !== "fit") {
      viewport.scrollLeft = press.left - dx;
      viewport.scrollTop = press.top - dy;
    }
  });
  viewport.addEventListener("pointerup", (ev) => {
    if (view.drawing && view.drawing.from) { finishDrawing(); return; }
    const p = press;
    press = null;
    if (!p || p.moved) return;
    const rect = pane.querySelector(".canvas").getBoundingClientRect();
    const x = (ev.clientX - rect.left) / view.scale, y = (ev.clientY - rect.top) / view.scale;
    setZoom(view.zoom === "fit" ? 1 : "fit", [x, y]);
  });
}

// Where a pointer event falls on the image, in full-resolution pixels (the overlay's and the operations' frame).
function imagePoint(pane, ev) {
  const rect = pane.querySelector(".canvas").getBoundingClientRect();
  const { width: W, height: H } = view.payload.doc.image;
  return [Math.min(W, Math.max(0, (ev.clientX - rect.left) / view.scale)),
          Math.min(H, Math.max(0, (ev.clientY - rect.top) / view.scale))];
}

// Drawing over a face the plan left alone: a blur (kind blur_face) or a lift (brighten_face), a new one (op_id null)
// or one drawn again (the plan's or a drawn one: its op_id). The next drag on the picture gives its box; Esc stops.
const DRAW_BUTTONS = { blur_face: "draw-blur", brighten_face: "draw-lift", red_eye: "draw-red-eye" };
const DRAW_HINTS = { blur_face: "Drag a box over the head to blur", brighten_face: "Drag a box over the face to brighten",
                     red_eye: "Drag a box over the red pupil" };

function startDrawing(opId = null, kind = "blur_face") {
  const same = view.drawing && view.drawing.op_id === opId && view.drawing.kind === kind;
  stopDrawing();
  if (!same) {
    view.drawing = { op_id: opId, kind };
    document.getElementById("stage").classList.add("drawing");
    if (opId === null) document.getElementById(DRAW_BUTTONS[kind]).classList.add("on");
    toast(`${DRAW_HINTS[kind]} (Esc: stop)`);
  }
  renderAll();
}

function stopDrawing() {
  view.drawing = null;
  view.sketch = null;
  document.getElementById("stage").classList.remove("drawing");
  for (const id of Object.values(DRAW_BUTTONS)) document.getElementById(id).classList.remove("on");
}

function finishDrawing() {
  const box = view.sketch && view.sketch.map((v) => Math.round(v * 10) / 10);
  const { op_id: opId, kind } = view.drawing;
  stopDrawing();
  // A click, not a drag (or a sliver): nothing drawn.
  if (!box || box[2] < 4 || box[3] < 4) { toast("Drag a box over the face: nothing drawn"); renderAll(); return; }
  send([opId ? { op_id: opId, box } : { add: kind, box }]);
}

function setZoom(zoom, at) {
  const { width: W, height: H } = view.payload.doc.image;
  view.zoom = zoom;
  document.getElementById("stage").classList.toggle("zoomed", zoom !== "fit");
  renderImage();
  renderOverlay();
  if (zoom !== "fit") {
    const [x, y] = at || [W / 2, H / 2];
    for (const viewport of document.querySelectorAll("#stage .viewport")) {
      viewport.scrollLeft = x * view.scale - viewport.clientWidth / 2;
      viewport.scrollTop = y * view.scale - viewport.clientHeight / 2;
    }
  }
  for (const pane of document.querySelectorAll("#stage .pane")) loadTiles(pane);
}

function setShow(show) {
  view.show = show;
  localStorage.setItem("postprod.show", show);
  const scroll = document.querySelector("#stage .viewport");
  const at = scroll ? [scroll.scrollLeft, scroll.scrollTop] : null;
  buildStage();
  renderImage();
  renderOverlay();
  if (at) for (const v of document.querySelectorAll("#stage .viewport")) { v.scrollLeft = at[0]; v.scrollTop = at[1]; }
}

// --- header, culling, filmstrip -----------------------------------------------------------------
function renderHeader() {
  const p = view.payload;
  const verdict = document.getElementById("verdict");
  verdict.textContent = p.doc.verdict;
  verdict.className = "badge verdict-" + p.doc.verdict;
  document.getElementById("title").textContent = p.source_path;
  document.title = `${p.source_path} · postprod review`;
  document.getElementById("summary").textContent = p.doc.summary;
  document.getElementById("culling").replaceChildren(cullingMarks(p.culling));
  document.getElementById("stale").hidden = !p.stale;
  const [prev, next] = neighbours();
  for (const [id, sp] of [["prev", prev], ["next", next]]) {
    const a = document.getElementById(id);
    if (sp) a.setAttribute("href", "/image/" + enc(sp)); else a.removeAttribute("href");
  }
  const c = p.culling;
  for (const b of document.querySelectorAll("[data-cull-flag]")) b.classList.toggle("on", (b.dataset.cullFlag || null) === c.flag);
  for (const b of document.querySelectorAll("#stars-input button")) b.classList.toggle("on", Number(b.dataset.stars) <= c.stars && Number(b.dataset.stars) > 0);
  for (const b of document.querySelectorAll("#labels-input button")) b.classList.toggle("on", b.dataset.label === c.label);
}

function neighbours() {
  const p = view.payload;
  const i = view.stripIndex.get(p.source_path);
  if (i === undefined) return [p.prev, p.next];
  return [i > 0 ? view.strip[i - 1].source_path : null, i + 1 < view.strip.length ? view.strip[i + 1].source_path : null];
}

function renderAll() {
  renderHeader();
  renderImage();
  renderOverlay();
  renderOps();
  renderMeasurements();
  markFilmstrip();
}

// The filmstrip's thumbnails load when they come near its visible part: Chromium's loading="lazy"
// looks at the page's viewport only, and would fetch all 2,000 of a horizontal strip at once.
let stripObserver = null;

function stripImage(item) {
  const img = h("img", { "data-src": item.thumb, decoding: "async", alt: "" });
  if (stripObserver) stripObserver.observe(img);
  return img;
}

function renderFilmstrip() {
  const nav = document.getElementById("filmstrip");
  if (stripObserver) stripObserver.disconnect();
  stripObserver = new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (!e.isIntersecting) continue;
      e.target.src = e.target.dataset.src;
      stripObserver.unobserve(e.target);
    }
  }, { root: nav, rootMargin: "0px 800px" });
  const frag = document.createDocumentFragment();
  view.strip.forEach((item, i) => frag.append(h("a", {
    class: "frame" + (item.flag === "reject" ? " culled" : "") + (item.label ? " label-" + item.label : ""),
    href: "/image/" + enc(item.source_path), "data-sp": item.source_path, "data-index": i, title: item.source_path },
    stripImage(item), cullingMarks(item, true))));
  nav.replaceChildren(frag);
  markFilmstrip();
}

function markFilmstrip() {
  const nav = document.getElementById("filmstrip");
  const current = nav.querySelector(".frame.current");
  if (current) current.classList.remove("current");
  const i = view.stripIndex.get(view.payload.source_path);
  const el = i === undefined ? null : nav.querySelector(`.frame[data-index="${i}"]`);
  if (el) {
    el.classList.add("current");
    // Keep the current frame in view without moving the page.
    const left = el.offsetLeft - nav.clientWidth / 2 + el.clientWidth / 2;
    nav.scrollTo({ left, behavior: "instant" });
  }
}

function updateStrip(tiles) {
  for (const tile of tiles) {
    const i = view.stripIndex.get(tile.source_path);
    if (i === undefined) continue;
    view.strip[i] = tile;
    const old = document.querySelector(`#filmstrip .frame[data-index="${i}"]`);
    if (old) {
      old.replaceChildren(stripImage(tile), cullingMarks(tile, true));
      old.className = "frame" + (tile.flag === "reject" ? " culled" : "") + (tile.label ? " label-" + tile.label : "");
    }
  }
  markFilmstrip();
}

async function loadStrip() {
  const query = sessionStorage.getItem("postprod.query") || "";
  const { status, data } = await api("GET", "/api/images?" + query);
  if (status !== 200) return;
  view.strip = data.images.filter((i) => i.url);
  view.stripIndex = new Map(view.strip.map((item, i) => [item.source_path, i]));
  if (!view.stripIndex.has(view.payload.source_path)) { // not under the gallery's filters: the whole shoot
    const all = await api("GET", "/api/images");
    view.strip = all.data.images.filter((i) => i.url);
    view.stripIndex = new Map(view.strip.map((item, i) => [item.source_path, i]));
  }
  renderFilmstrip();
  renderHeader();
  prefetchNeighbours();
}

function fetchPayload(sp) {
  let promise = view.prefetched.get(sp);
  if (!promise) {
    promise = api("GET", "/api/images/" + enc(sp));
    view.prefetched.set(sp, promise);
    setTimeout(() => view.prefetched.delete(sp), 20000); // fresh enough to show; a change still checks the version
  }
  return promise;
}

function prefetchNeighbours() {
  for (const sp of neighbours()) {
    if (!sp) continue;
    fetchPayload(sp).then(({ status, data }) => {
      if (status === 200) { new Image().src = view.show === "before" ? data.previews.before : data.previews.after; }
    });
  }
}

async function gotoImage(sp) {
  if (!sp) return;
  const { status, data } = await fetchPayload(sp);
  view.prefetched.delete(sp);
  if (status !== 200) return toast(data.error || "cannot load the image", "error");
  if (view.drawing) stopDrawing();  // a box is drawn on the image it was started on
  showPayload(data);
  history.replaceState(null, "", "/image/" + enc(sp));
  sessionStorage.setItem("postprod.selected", sp);
  prefetchNeighbours();
  loadHistory();
}

function showPayload(data) {
  const same = view.payload && view.payload.source_path === data.source_path;
  view.payload = data;
  if (!same) {
    view.drafts = {};
    view.selected = 0;
    if (view.zoom !== "fit") view.zoom = "fit"; // a new image opens fitted
    buildStage();
  }
  renderAll();
}

async function loadHistory() {
  const { status, data } = await api("GET", "/api/history/" + enc(view.payload.source_path));
  if (status !== 200) return;
  document.getElementById("history").replaceChildren(...data.history.slice(-30).reverse().map((e) =>
    h("li", { text: `${e.at} ${e.by || "postprod"}: ${e.op_id || "image"} ${e.field} ${JSON.stringify(e.before)} → ${JSON.stringify(e.after)}` })));
}

function send(changes) {
  const sp = view.payload.source_path;
  return queued(() => sendNow(sp, changes));
}

async function sendNow(sp, changes) {
  const p = view.payload;
  if (p.source_path !== sp) return; // moved on to another image meanwhile
  const { status, data } = await api("POST", "/api/images/" + enc(p.source_path),
    { version: p.version, reviewer: reviewerName(), changes });
  if (view.payload.source_path !== sp) return;
  if (status === 200) {
    for (const c of changes) if (c.box) delete view.drafts[c.op_id];
    if (data.undo) {
      const what = changes.map((c) => `${c.op_id} ${Object.keys(c).filter((k) => k !== "op_id").join("/")}`).join(", ");
      history_.push({ label: `${what} on ${p.source_path}`, body: { reviewer: reviewerName(), items: [data.undo] } });
    }
    view.payload = data;
    toast("Saved");
  } else if (status === 409) {
    view.payload = data; // the current state, as another tab or reviewer left it
    view.drafts = {};
    toast("This image was changed elsewhere (another tab or reviewer): reloaded. Check and redo.", "warn");
  } else {
    toast(data.error || "Not saved", "error");
    return;
  }
  renderAll();
  loadHistory();
  refreshRenderButton();
}

async function cullImage(image) {
  const sp = view.payload.source_path;
  const done = decide([{ source_path: sp, image }], `${describeCulling(image)}: ${sp}`);
  if (autoAdvance()) gotoImage(neighbours()[1]);
  await done;
}

function imageDecided(tiles) {
  updateStrip(tiles);
  const mine = tiles.find((t) => t.source_path === view.payload.source_path);
  if (mine && mine.version !== view.payload.version) {
    // The culling shows at once; the rest (an undone instruction) comes with the image again.
    view.payload.culling = { flag: mine.flag, stars: mine.stars, label: mine.label };
    view.payload.version = mine.version;
    view.payload.stale = mine.stale;
    renderHeader();
    api("GET", "/api/images/" + enc(mine.source_path)).then(({ status, data }) => {
      if (status === 200 && data.source_path === view.payload.source_path) { view.payload = data; renderAll(); loadHistory(); }
    });
  }
  refreshRenderButton();
}

function scaleCrop(op, factor) {
  const { doc } = view.payload;
  const [x, y, w, hgt] = cropBox(op);
  let nw = w * factor, nh = hgt * factor;
  // Never larger than the image, or than the crop already is (a packshot's crop padded beyond the frame).
  const limit = Math.min(Math.max(doc.image.width, w) / nw, Math.max(doc.image.height, hgt) / nh, 1);
  nw *= limit; nh *= limit;
  const cx = x + w / 2, cy = y + hgt / 2;
  view.drafts[op.op_id] = clampBox([cx - nw / 2, cy - nh / 2, nw, nh]);
  view.selected = doc.operations.indexOf(op);
  renderAll();
}

function clampBox([x, y, w, hgt]) {
  // Inside the image; a box larger than it (a crop padded beyond the frame) keeps the image inside itself.
  const { doc } = view.payload;
  const clamp = (v, size, full) => Math.min(Math.max(Math.min(0, full - size), v), Math.max(0, full - size));
  return [clamp(x, w, doc.image.width), clamp(y, hgt, doc.image.height), w, hgt];
}

function startDrag(ev, op) {
  // Only the selected crop moves: elsewhere a click zooms and a drag pans (and while a mark is drawn, it draws).
  if (view.drawing || view.payload.doc.operations[view.selected] !== op) return;
  ev.preventDefault();
  ev.stopPropagation();
  const svg = document.getElementById("overlay");
  view.drag = { op, x: ev.clientX, y: ev.clientY, box: cropBox(op).slice(),
                scale: view.payload.doc.image.width / svg.getBoundingClientRect().width };
  svg.setPointerCapture(ev.pointerId);
}

function setupDrag() {
  const svg = document.getElementById("overlay");
  if (!svg) return;
  svg.addEventListener("pointermove", (ev) => {
    const d = view.drag;
    if (!d) return;
    const [x, y, w, hgt] = d.box;
    view.drafts[d.op.op_id] = clampBox([x + (ev.clientX - d.x) * d.scale, y + (ev.clientY - d.y) * d.scale, w, hgt]);
    renderOverlay();
  });
  const end = () => { if (view.drag) { view.drag = null; renderAll(); } };
  svg.addEventListener("pointerup", end);
  svg.addEventListener("pointercancel", end);
  svg.addEventListener("wheel", (ev) => {
    const op = view.payload.doc.operations[view.selected];
    if (!op || op.kind !== "crop" || view.zoom !== "fit") return;
    ev.preventDefault();
    scaleCrop(op, ev.deltaY < 0 ? 1.03 : 1 / 1.03);
  }, { passive: false });
}

function setupCullbar() {
  const stars = document.getElementById("stars-input");
  stars.replaceChildren(...[1, 2, 3, 4, 5].map((n) => h("button", { type: "button", "data-stars": n, text: "★",
    title: `${n} star${n > 1 ? "s" : ""} (${n}); again: none (0)` })));
  stars.addEventListener("click", (ev) => {
    const n = Number(ev.target.dataset.stars);
    if (n) cullImage({ stars: view.payload.culling.stars === n ? 0 : n });
  });
  const labels = document.getElementById("labels-input");
  labels.replaceChildren(...LABELS.map((label, i) => h("button", { type: "button", class: "label-chip label-" + label,
    "data-label": label, title: `${label}${i < 4 ? ` (${i + 6})` : ""}; again: none` })));
  labels.addEventListener("click", (ev) => {
    const label = ev.target.dataset.label;
    if (label) cullImage({ label: view.payload.culling.label === label ? null : label });
  });
  for (const b of document.querySelectorAll("[data-cull-flag]")) {
    b.addEventListener("click", () => cullImage({ flag: b.dataset.cullFlag || null }));
  }
}

async function setupImage() {
  const saved = JSON.parse(localStorage.getItem("postprod.overlays") || "null");
  if (saved) Object.assign(view.overlays, saved);
  view.show = localStorage.getItem("postprod.show") || "after";
  if (!["before", "after", "both", "proposed"].includes(view.show)) view.show = "after";
  onDecided = imageDecided;
  onRendered = () => gotoImage(view.payload.source_path).then(loadStrip);
  setupCullbar();
  const sp = document.body.dataset.source;
  const { status, data } = await api("GET", "/api/images/" + enc(sp));
  if (status !== 200) return toast(data.error || "cannot load the image", "error");
  sessionStorage.setItem("postprod.selected", sp);
  showPayload(data);
  loadHistory();
  loadStrip();
  window.addEventListener("resize", () => { layoutStage(); renderOverlay(); for (const p of document.querySelectorAll("#stage .pane")) loadTiles(p); });
  for (const b of document.querySelectorAll("[data-view]")) b.addEventListener("click", () => setShow(b.dataset.view));
  document.getElementById("draw-blur").addEventListener("click", () => startDrawing(null, "blur_face"));
  document.getElementById("draw-lift").addEventListener("click", () => startDrawing(null, "brighten_face"));
  document.getElementById("draw-red-eye").addEventListener("click", () => startDrawing(null, "red_eye"));
  for (const b of document.querySelectorAll("[data-zoom]")) b.addEventListener("click", () => setZoom(b.dataset.zoom === "fit" ? "fit" : 1));
  for (const box of document.querySelectorAll("[data-overlay]")) {
    box.addEventListener("change", () => toggleOverlay(box.dataset.overlay, box.checked));
  }
  document.getElementById("filmstrip").addEventListener("click", (ev) => {
    const frame = ev.target.closest(".frame");
    if (!frame || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
    ev.preventDefault();
    gotoImage(frame.dataset.sp);
  });
  for (const id of ["prev", "next"]) {
    document.getElementById(id).addEventListener("click", (ev) => {
      ev.preventDefault();
      gotoImage(neighbours()[id === "prev" ? 0 : 1]);
    });
  }
  document.addEventListener("keydown", imageKeys);
}

function toggleOverlay(name, on) {
  view.overlays[name] = on === undefined ? !view.overlays[name] : on;
  localStorage.setItem("postprod.overlays", JSON.stringify(view.overlays));
  renderImage();
  renderOverlay();
}

function imageKeys(ev) {
  if (typing(ev) || ev.ctrlKey || ev.metaKey || ev.altKey || !view.payload || document.getElementById("confirm").open) return;
  const ops = view.payload.doc.operations;
  const op = ops[view.selected];
  const k = ev.key;
  const culling = cullingKey(ev);
  if (culling) cullImage(culling);
  else if (k === "j" || k === "ArrowDown") { view.selected = Math.min(ops.length - 1, view.selected + 1); renderAll(); scrollToOp(); }
  else if (k === "k" || k === "ArrowUp") { view.selected = Math.max(0, view.selected - 1); renderAll(); scrollToOp(); }
  else if (k === "a" && op) send([{ op_id: op.op_id, status: "accepted" }]);
  else if (k === "r" && op) send([{ op_id: op.op_id, status: "rejected" }]);
  else if (k === "d" && op) send([{ op_id: op.op_id, status: "done" }]);
  else if (k === "ArrowLeft") gotoImage(neighbours()[0]);
  else if (k === "ArrowRight") gotoImage(neighbours()[1]);
  else if (k === "Escape" && view.drawing) { stopDrawing(); renderAll(); }
  else if (k === "m") startDrawing(null, "blur_face");
  else if (k === "n") startDrawing(null, "brighten_face");
  else if (k === "e") startDrawing(null, "red_eye");
  else if (k === "Escape") { if (view.zoom !== "fit") setZoom("fit"); else location.href = "/" + (sessionStorage.getItem("postprod.query") ? "?" + sessionStorage.getItem("postprod.query") : ""); }
  else if (k === "z" || k === " ") setZoom(view.zoom === "fit" ? 1 : "fit");
  else if (k === "y") setShow(view.show === "both" ? "after" : "both");
  else if (k === "b") setShow(view.show === "after" ? "before" : "after");
  else if (k === "o" && view.payload.previews.proposed) setShow(view.show === "proposed" ? "after" : "proposed");
  else if (k === "f") toggleOverlay("faces");
  else if (k === "c") toggleOverlay("crops");
  else if (k === "h") toggleOverlay("clip");
  else if (k === "l") toggleOverlay("level");
  else if (k === "s") toggleOverlay("subject");
  else return;
  ev.preventDefault();
}

function scrollToOp() {
  const el = document.querySelector(".op.selected");
  if (el) el.scrollIntoView({ block: "nearest" });
}

document.addEventListener("DOMContentLoaded", () => {
  setupShared();
  if (document.body.dataset.page === "gallery") setupGallery();
  else if (document.body.dataset.page === "image") setupImage();
});
