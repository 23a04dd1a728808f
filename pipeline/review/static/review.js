// postprod review: gallery and per-image view. No framework, no build step.
// Every text from the shoot (paths, reasons, comments) goes through textContent.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

function h(tag, attrs = {}, ...children) {
  const svg = ["svg", "g", "rect", "ellipse", "line", "polygon", "text", "title", "path", "circle"].includes(tag);
  const el = svg ? document.createElementNS(SVG_NS, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") el.textContent = v;
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

// --- reviewer name, kept in the browser ------------------------------------------
function reviewerName() {
  const input = document.getElementById("reviewer");
  return (input && input.value.trim()) || document.body.dataset.reviewer || "";
}

function setupReviewer() {
  const input = document.getElementById("reviewer");
  input.value = localStorage.getItem("postprod.reviewer") || document.body.dataset.reviewer || "";
  input.addEventListener("change", () => localStorage.setItem("postprod.reviewer", input.value.trim()));
}

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
  return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
}

// --- gallery ----------------------------------------------------------------------
const gallery = { items: [], selected: 0 };

function galleryQuery() {
  const form = document.getElementById("filters");
  const params = new URLSearchParams();
  const verdict = form.elements.verdict.value;
  const review = form.elements.review.value;
  if (verdict) params.set("verdict", verdict);
  if (form.elements.faces.checked) params.set("faces", "1");
  if (review) params.set("review", review);
  return params;
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
  return out;
}

function renderTile(item, index) {
  const img = item.thumb
    ? h("img", { src: item.thumb, loading: "lazy", alt: "" })
    : h("div", { class: "nothumb", text: "no preview" });
  const tile = h(
    item.url ? "a" : "div",
    { class: "tile", href: item.url, "data-sp": item.source_path, "data-index": index, title: item.summary || item.error || "" },
    img,
    h("div", { class: "name", text: item.source_path }),
    h("div", { class: "badges" }, tileBadges(item)),
  );
  tile.addEventListener("click", (ev) => {
    if (!item.url) ev.preventDefault();
    selectTile(index);
  });
  return tile;
}

async function loadGallery() {
  const params = galleryQuery();
  history.replaceState(null, "", params.toString() ? "?" + params : location.pathname);
  const { status, data } = await api("GET", "/api/images?" + params);
  if (status !== 200) return toast(data.error || "cannot list images", "error");
  gallery.items = data.images;
  const grid = document.getElementById("grid");
  grid.replaceChildren(...data.images.map(renderTile));
  document.getElementById("count").textContent = `${data.images.length} image${data.images.length === 1 ? "" : "s"}`;
  const keep = sessionStorage.getItem("postprod.selected");
  const at = data.images.findIndex((i) => i.source_path === keep);
  selectTile(at >= 0 ? at : 0, false);
}

function selectTile(index, scroll = true) {
  const tiles = document.querySelectorAll(".tile");
  if (!tiles.length) return;
  gallery.selected = Math.max(0, Math.min(tiles.length - 1, index));
  tiles.forEach((t, i) => t.classList.toggle("selected", i === gallery.selected));
  const tile = tiles[gallery.selected];
  sessionStorage.setItem("postprod.selected", tile.dataset.sp);
  if (scroll) tile.scrollIntoView({ block: "nearest" });
}

function columns() {
  const tiles = document.querySelectorAll(".tile");
  if (tiles.length < 2) return 1;
  const top = tiles[0].offsetTop;
  let n = 0;
  while (n < tiles.length && tiles[n].offsetTop === top) n++;
  return Math.max(1, n);
}

async function galleryAction(status) {
  const item = gallery.items[gallery.selected];
  if (!item || !item.url) return;
  const { status: code, data } = await api("POST", "/api/images/" + enc(item.source_path), {
    version: item.version, reviewer: reviewerName(), all: { status },
  });
  if (code === 409) toast("Changed elsewhere meanwhile: reloaded, try again", "warn");
  else if (code !== 200) return toast(data.error || "not saved", "error");
  else toast(`${item.source_path}: ${status}`);
  await loadGallery();
}

function setupGallery() {
  const form = document.getElementById("filters");
  const params = new URLSearchParams(location.search);
  form.elements.verdict.value = params.get("verdict") || "";
  form.elements.review.value = params.get("review") || "";
  form.elements.faces.checked = params.get("faces") === "1";
  form.addEventListener("change", loadGallery);
  form.addEventListener("submit", (ev) => ev.preventDefault());
  document.addEventListener("keydown", (ev) => {
    if (typing(ev) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const k = ev.key;
    if (k === "ArrowRight" || k === "j") selectTile(gallery.selected + 1);
    else if (k === "ArrowLeft" || k === "k") selectTile(gallery.selected - 1);
    else if (k === "ArrowDown") selectTile(gallery.selected + columns());
    else if (k === "ArrowUp") selectTile(gallery.selected - columns());
    else if (k === "Enter") {
      const item = gallery.items[gallery.selected];
      if (item && item.url) location.href = item.url;
    } else if (k === "a") galleryAction("accepted");
    else if (k === "r") galleryAction("rejected");
    else if (k === "d") galleryAction("done");
    else return;
    ev.preventDefault();
  });
  loadGallery();
}

// --- image view ---------------------------------------------------------------------
const view = {
  payload: null,
  selected: 0,
  show: "after",
  overlays: { faces: true, crops: true, clip: false, level: true },
  drafts: {}, // op_id -> crop box being edited
  drag: null,
};

function opAmount(op) {
  const p = op.params;
  switch (op.kind) {
    case "exposure": return `${fmt(p.ev, 2, true)} EV`;
    case "brighten_face": return `face ${p.face_index + 1}: ${fmt(p.ev, 2, true)} EV`;
    case "white_balance": return `${fmt(p.temperature_shift_k, 0, true)} K, tint ${fmt(p.tint_shift, 1, true)}`;
    case "straighten": return `${fmt(p.angle_deg, 2, true)}° (${p.axis})`;
    case "crop": return `${p.aspect} ${p.placement}`;
    default: return p.check || "";
  }
}

function cropBox(op) {
  return view.drafts[op.op_id] || op.params.box;
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
    );
    actions.addEventListener("click", (ev) => {
      const act = ev.target.dataset.act;
      if (act) send([{ op_id: op.op_id, status: act }]);
    });
    let editor = null;
    if (op.kind === "exposure" || op.kind === "brighten_face") {
      const input = h("input", { type: "number", step: "0.05", min: "-5", max: "5", class: "ev", value: op.params.ev,
                                 "aria-label": "amount in EV" });
      const set = () => send([{ op_id: op.op_id, ev: Number(input.value) }]);
      input.addEventListener("keydown", (ev) => { if (ev.key === "Enter") set(); });
      editor = h("div", { class: "edit" }, h("label", { text: "Amount " }, input, " EV"),
                 h("button", { type: "button", class: "set-ev", text: "Set", onclick: set }));
    } else if (op.kind === "crop") {
      const drafted = !!view.drafts[op.op_id];
      editor = h("div", { class: "edit" },
        h("span", { class: "hint", text: "Drag the frame; wheel or −/+ to resize." }),
        h("button", { type: "button", text: "−", title: "smaller", onclick: () => scaleCrop(op, 1 / 1.05) }),
        h("button", { type: "button", text: "+", title: "larger", onclick: () => scaleCrop(op, 1.05) }),
        h("button", { type: "button", class: "save-crop", text: "Save crop", disabled: !drafted,
                      onclick: () => send([{ op_id: op.op_id, box: view.drafts[op.op_id].map((v) => Math.round(v * 10) / 10) }]) }),
        drafted ? h("button", { type: "button", text: "Undo", onclick: () => { delete view.drafts[op.op_id]; renderAll(); } }) : null,
      );
    }
    const comment = h("textarea", { class: "comment", rows: "2", maxlength: "2000", placeholder: "Comment" });
    comment.value = r.comment || "";
    const saveComment = h("button", { type: "button", class: "save-comment", text: "Save comment",
                                      onclick: () => send([{ op_id: op.op_id, comment: comment.value }]) });
    const li = h("li", { class: `op kind-${op.kind} status-${r.status}` + (i === view.selected ? " selected" : ""),
                         "data-op": op.op_id },
      h("div", { class: "head" },
        h("span", { class: "kind", text: op.kind.replace("_", " ") }),
        h("span", { class: "amount", text: opAmount(op) }),
        h("span", { class: "status " + r.status, text: r.status })),
      h("p", { class: "reason", text: op.reason }),
      h("div", { class: "meta", text:
        `${op.applied_by === "renderer" ? "automatic" : "by a retoucher"} · confidence ${fmt(op.confidence)}` +
        (op.measured !== null ? ` · measured ${fmt(op.measured)}` : "") +
        (op.target !== null ? ` · target ${fmt(op.target)}` : "") }),
      r.by ? h("div", { class: "by", text: `${r.status} by ${r.by} · ${r.at}` }) : null,
      actions, editor,
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
  const rows = [
    ["Exposure", `${fmt(m.exposure_ev, 2, true)} EV (${m.exposure_verdict || "–"})`],
    ["Clipped highlights", `${fmt(m.clipped_highlights_pct)} %`],
    ["White balance", `${fmt(m.wb_temperature_shift_k, 0, true)} K`],
    ["Sharpness", fmt(m.sharpness, 1)],
    ["Horizon / verticals", `${fmt(m.horizon_tilt_deg, 2, true)}° / ${fmt(m.verticals_tilt_deg, 2, true)}°`],
    ["Size", `${doc.image.width} × ${doc.image.height}` + (doc.image.camera_model ? ` · ${doc.image.camera_model}` : "")],
    ["Faces", `${doc.faces.length} found, ${doc.faces_to_brighten} to brighten`],
  ];
  document.getElementById("measurements").replaceChildren(
    ...rows.map(([k, v]) => h("tr", {}, h("th", { text: k }), h("td", { text: v }))));
}

function rotatePoint(cx, cy, x, y, deg) {
  // Counter-clockwise on screen (y down), as pipeline/geometry.py turns crops.
  const a = (deg * Math.PI) / 180;
  const dx = x - cx, dy = y - cy;
  return [cx + dx * Math.cos(a) + dy * Math.sin(a), cy - dx * Math.sin(a) + dy * Math.cos(a)];
}

function renderOverlay() {
  const { doc } = view.payload;
  const W = doc.image.width, H = doc.image.height;
  const svg = document.getElementById("overlay");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  // Image pixels per screen pixel: strokes and labels keep their size on screen.
  const shown = svg.getBoundingClientRect().width;
  const unit = shown ? W / shown : Math.max(W, H) / 1000;
  const children = [];
  const selectedOp = doc.operations[view.selected];
  const active = (op) => op.review.status !== "rejected";

  if (view.overlays.faces) {
    const brighten = {};
    for (const op of doc.operations) if (op.kind === "brighten_face") brighten[op.params.face_index] = op;
    for (const f of doc.faces) {
      const [x, y, w, hgt] = f.box;
      const op = brighten[f.face_index];
      const cls = "face" + (op ? (active(op) ? " brighten" : " rejected") : "") +
        (op && selectedOp === op ? " selected" : "");
      const label = `${f.face_index + 1}` + (op ? ` ${fmt(op.params.ev, 2, true)} EV` : "");
      const tip = `face ${f.face_index + 1}: measured ${fmt(f.exposure_ev, 2, true)} EV, score ${fmt(f.score)}` +
        (f.too_small ? ", too small" : "") + (op ? `; brighten ${fmt(op.params.ev, 2, true)} EV (${op.review.status})` : "");
      children.push(h("g", { class: cls, "data-face": f.face_index },
        h("title", { text: tip }),
        h("rect", { x, y, width: w, height: hgt, "stroke-width": 2 * unit }),
        op ? h("ellipse", { cx: x + w / 2, cy: y + hgt / 2, rx: w / 2, ry: hgt / 2, "stroke-width": 1.5 * unit,
                            "stroke-dasharray": `${6 * unit} ${4 * unit}` }) : null,
        h("text", { x: x, y: Math.max(14 * unit, y - 4 * unit), "font-size": 14 * unit, text: label })));
    }
  }
  if (view.overlays.crops) {
    for (const op of doc.operations) {
      if (op.kind !== "crop" || !active(op)) continue;
      const [x, y, w, hgt] = cropBox(op);
      const cx = x + w / 2, cy = y + hgt / 2, angle = op.params.angle_deg || 0;
      const pts = [[x, y], [x + w, y], [x + w, y + hgt], [x, y + hgt]].map(([px, py]) => rotatePoint(cx, cy, px, py, angle));
      const sel = selectedOp === op;
      const g = h("g", { class: "crop" + (sel ? " selected" : "") + (view.drafts[op.op_id] ? " draft" : ""), "data-op": op.op_id },
        h("polygon", { points: pts.map((p) => p.join(",")).join(" "), "stroke-width": (sel ? 3 : 1.5) * unit }),
        h("text", { x: pts[0][0] + 6 * unit, y: pts[0][1] + 18 * unit, "font-size": 14 * unit, text: op.params.aspect }));
      g.addEventListener("pointerdown", (ev) => startDrag(ev, op));
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
      for (const line of [level, tilt]) line.setAttribute("stroke-width", 1.5 * unit);
      children.push(h("g", { class: "guide" + (active(st) ? "" : " rejected") }, level, tilt,
        h("text", { x: 8 * unit, y: cy - 8 * unit, "font-size": 14 * unit, text: `${st.params.axis} ${fmt(t, 2, true)}°` })));
    }
  }
  svg.replaceChildren(...children);
}

function layoutStage() {
  // Fit the image to the room there is, upscaling small ones; the overlay follows the img box.
  if (!view.payload) return;
  const { width: W, height: H } = view.payload.doc.image;
  const wrap = document.querySelector(".stage-wrap");
  const roomW = wrap.clientWidth - 16;
  const roomH = Math.max(240, window.innerHeight - wrap.getBoundingClientRect().top - 24);
  const s = Math.min(roomW / W, roomH / H);
  const photo = document.getElementById("photo");
  photo.style.width = `${Math.floor(W * s)}px`;
  photo.style.height = `${Math.floor(H * s)}px`;
}

function renderImage() {
  const p = view.payload;
  layoutStage();
  const photo = document.getElementById("photo");
  const src = view.show === "after" ? p.previews.after : p.previews.before;
  if (photo.getAttribute("src") !== src) photo.setAttribute("src", src);
  const clip = document.getElementById("clip");
  clip.hidden = !view.overlays.clip;
  if (view.overlays.clip && clip.getAttribute("src") !== p.previews.clip) clip.setAttribute("src", p.previews.clip);
  document.getElementById("show-before").classList.toggle("on", view.show === "before");
  document.getElementById("show-after").classList.toggle("on", view.show === "after");
  for (const [name, on] of Object.entries(view.overlays)) document.getElementById("ov-" + name).checked = on;
}

function renderHeader() {
  const p = view.payload;
  const verdict = document.getElementById("verdict");
  verdict.textContent = p.doc.verdict;
  verdict.className = "badge verdict-" + p.doc.verdict;
  document.getElementById("summary").textContent = p.doc.summary;
  for (const [id, sp] of [["prev", p.prev], ["next", p.next]]) {
    const a = document.getElementById(id);
    if (sp) a.setAttribute("href", "/image/" + enc(sp)); else a.removeAttribute("href");
  }
}

function renderAll() {
  renderHeader();
  renderImage();
  renderOverlay();
  renderOps();
  renderMeasurements();
}

async function loadHistory() {
  const { status, data } = await api("GET", "/api/history/" + enc(view.payload.source_path));
  if (status !== 200) return;
  document.getElementById("history").replaceChildren(...data.history.slice(-30).reverse().map((e) =>
    h("li", { text: `${e.at} ${e.by || "postprod"}: ${e.op_id || ""} ${e.field} ${JSON.stringify(e.before)} → ${JSON.stringify(e.after)}` })));
}

async function send(changes) {
  const p = view.payload;
  const { status, data } = await api("POST", "/api/images/" + enc(p.source_path),
    { version: p.version, reviewer: reviewerName(), changes });
  if (status === 200) {
    for (const c of changes) if (c.box) delete view.drafts[c.op_id];
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
}

function scaleCrop(op, factor) {
  const { doc } = view.payload;
  const [x, y, w, hgt] = cropBox(op);
  let nw = w * factor, nh = hgt * factor;
  const limit = Math.min(doc.image.width / nw, doc.image.height / nh, 1);
  nw *= limit; nh *= limit;
  const cx = x + w / 2, cy = y + hgt / 2;
  view.drafts[op.op_id] = clampBox([cx - nw / 2, cy - nh / 2, nw, nh]);
  view.selected = doc.operations.indexOf(op);
  renderAll();
}

function clampBox([x, y, w, hgt]) {
  const { doc } = view.payload;
  return [Math.min(Math.max(0, x), doc.image.width - w), Math.min(Math.max(0, y), doc.image.height - hgt), w, hgt];
}

function startDrag(ev, op) {
  ev.preventDefault();
  const svg = document.getElementById("overlay");
  view.selected = view.payload.doc.operations.indexOf(op);
  view.drag = { op, x: ev.clientX, y: ev.clientY, box: cropBox(op).slice(),
                scale: view.payload.doc.image.width / svg.getBoundingClientRect().width };
  svg.setPointerCapture(ev.pointerId);
}

function setupDrag() {
  const svg = document.getElementById("overlay");
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
    if (!op || op.kind !== "crop") return;
    ev.preventDefault();
    scaleCrop(op, ev.deltaY < 0 ? 1.03 : 1 / 1.03);
  }, { passive: false });
}

async function setupImage() {
  const saved = JSON.parse(localStorage.getItem("postprod.overlays") || "null");
  if (saved) Object.assign(view.overlays, saved);
  view.show = localStorage.getItem("postprod.show") || "after";
  const sp = document.body.dataset.source;
  const { status, data } = await api("GET", "/api/images/" + enc(sp));
  if (status !== 200) return toast(data.error || "cannot load the image", "error");
  view.payload = data;
  sessionStorage.setItem("postprod.selected", sp);
  renderAll();
  loadHistory();
  setupDrag();
  window.addEventListener("resize", () => { layoutStage(); renderOverlay(); });
  for (const b of document.querySelectorAll("[data-view]")) {
    b.addEventListener("click", () => { view.show = b.dataset.view; localStorage.setItem("postprod.show", view.show); renderImage(); });
  }
  for (const box of document.querySelectorAll("[data-overlay]")) {
    box.addEventListener("change", () => toggleOverlay(box.dataset.overlay, box.checked));
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
  if (typing(ev) || ev.ctrlKey || ev.metaKey || ev.altKey || !view.payload) return;
  const ops = view.payload.doc.operations;
  const op = ops[view.selected];
  const k = ev.key;
  if (k === "j" || k === "ArrowDown") { view.selected = Math.min(ops.length - 1, view.selected + 1); renderAll(); scrollToOp(); }
  else if (k === "k" || k === "ArrowUp") { view.selected = Math.max(0, view.selected - 1); renderAll(); scrollToOp(); }
  else if (k === "a" && op) send([{ op_id: op.op_id, status: "accepted" }]);
  else if (k === "r" && op) send([{ op_id: op.op_id, status: "rejected" }]);
  else if (k === "d" && op) send([{ op_id: op.op_id, status: "done" }]);
  else if (k === "ArrowLeft" && view.payload.prev) location.href = "/image/" + enc(view.payload.prev);
  else if (k === "ArrowRight" && view.payload.next) location.href = "/image/" + enc(view.payload.next);
  else if (k === "Escape") location.href = "/";
  else if (k === "b") { view.show = view.show === "after" ? "before" : "after"; localStorage.setItem("postprod.show", view.show); renderImage(); }
  else if (k === "f") toggleOverlay("faces");
  else if (k === "c") toggleOverlay("crops");
  else if (k === "h") toggleOverlay("clip");
  else if (k === "l") toggleOverlay("level");
  else return;
  ev.preventDefault();
}

function scrollToOp() {
  const el = document.querySelector(".op.selected");
  if (el) el.scrollIntoView({ block: "nearest" });
}

document.addEventListener("DOMContentLoaded", () => {
  setupReviewer();
  if (document.body.dataset.page === "gallery") setupGallery();
  else if (document.body.dataset.page === "image") setupImage();
});
