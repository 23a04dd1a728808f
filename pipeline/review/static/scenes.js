// postprod review: scenes (the frames of one place and light) in the gallery and the image view.
// Uses review.js's helpers (h, api, toast, enc, reviewerName, loadGallery); every text from the shoot
// goes through textContent.
"use strict";

const sceneState = { byPath: {}, frames: {} };

async function loadScenes() {
  const { status, data } = await api("GET", "/api/scenes");
  if (status !== 200) return false;
  sceneState.byPath = data.by_path;
  sceneState.frames = Object.fromEntries(data.scenes.map((s) => [s.scene_id, s.frames]));
  return true;
}

function sceneOf(sp) {
  const sid = sceneState.byPath[sp];
  return sid !== undefined && (sceneState.frames[sid] || []).length > 1 ? sid : null;
}

function sceneChip(sid) {
  const n = sceneState.frames[sid].length;
  return h("button", { type: "button", class: "badge scene-chip", "data-scene": sid, text: `scene ${sid}`,
                       title: `${n} frames of one place and light: pick it for a decision on the whole scene` });
}

function reportScene(what, data) {
  const changed = Object.keys(data.changed).length;
  const skipped = Object.entries(data.skipped);
  let text = `${what}: ${changed} of ${data.frames.length} frames of scene ${data.scene_id} changed`;
  if (skipped.length) text += `; left: ${skipped.map(([sp, why]) => `${sp} (${why})`).join(", ")}`;
  toast(text, skipped.length ? "warn" : "info");
}

async function sceneAction(sid, body, what) {
  const n = (sceneState.frames[sid] || []).length;
  if (!window.confirm(`${what} for the ${n} frames of scene ${sid}?`)) return null;
  const { status, data } = await api("POST", `/api/scenes/${sid}`, { ...body, reviewer: reviewerName() });
  if (status !== 200) { toast(data.error || "Not saved", "error"); return null; }
  reportScene(what, data);
  return data;
}

function sceneControls(sid, afterChange, source) {
  const amount = h("input", { type: "number", step: "0.1", min: "-5", max: "5", value: "0.3", class: "scene-ev",
                              "aria-label": "exposure amount in EV" });
  const act = async (body, what) => { if (await sceneAction(sid, body, what)) afterChange(); };
  const ev = () => Number(amount.value);
  const buttons = [
    h("button", { type: "button", text: "Accept scene", onclick: () => act({ action: "decide", status: "accepted" }, "Accept every pending instruction") }),
    h("button", { type: "button", text: "Reject scene", onclick: () => act({ action: "decide", status: "rejected" }, "Reject every pending instruction") }),
    amount,
    h("button", { type: "button", text: "Set EV", title: "every frame of the scene at this exposure",
                  onclick: () => act({ action: "exposure", ev: ev() }, `Set exposure ${ev() >= 0 ? "+" : ""}${ev()} EV`) }),
    h("button", { type: "button", text: "Move EV", title: "every frame this much brighter (or darker) than it is",
                  onclick: () => act({ action: "exposure", ev_delta: ev() }, `Move exposure by ${ev() >= 0 ? "+" : ""}${ev()} EV`) }),
    h("button", { type: "button", text: source ? "Sync WB to this frame" : "Sync WB",
                  title: source ? "every frame rendered at this frame's white" : "every frame rendered at the scene's median white",
                  onclick: () => act(source ? { action: "white_balance", reference: source } : { action: "white_balance" },
                                     "Sync white balance") }),
  ];
  if (source) {
    buttons.push(h("button", {
      type: "button", text: "Propagate to scene",
      title: "do this frame's exposure and white-balance decisions to the rest of its scene",
      onclick: async () => {
        const n = sceneState.frames[sid].length - 1;
        if (!window.confirm(`Do this frame's exposure and white-balance decisions to the ${n} other frames of scene ${sid}?`)) return;
        const version = (typeof view !== "undefined" && view.payload) ? view.payload.version : undefined;
        const { status, data } = await api("POST", "/api/scenes/propagate", { from: source, version, reviewer: reviewerName() });
        if (status !== 200) { toast(data.error || "Not propagated", "error"); return; }
        reportScene("Propagated", data);
        afterChange();
      },
    }));
  }
  return buttons;
}

function decorateTiles() {
  for (const tile of document.querySelectorAll(".tile")) {
    const badges = tile.querySelector(".badges");
    if (!badges || badges.querySelector(".scene-chip")) continue;
    const sid = sceneOf(tile.dataset.sp);
    if (sid !== null) badges.append(sceneChip(sid));
  }
}

async function setupSceneGallery() {
  if (!(await loadScenes()) || !Object.keys(sceneState.frames).length) return;
  const picked = h("span", { class: "scene-picked" });
  const bar = h("div", { id: "scene-bar", class: "scene-bar", hidden: true });
  const pick = (sid) => {
    bar.hidden = false;
    bar.replaceChildren(h("b", { text: `Scene ${sid}` }),
      h("span", { class: "dim", text: ` · ${sceneState.frames[sid].length} frames` }), picked,
      ...sceneControls(sid, () => loadGallery()),
      h("button", { type: "button", text: "×", title: "close", onclick: () => { bar.hidden = true; } }));
  };
  document.getElementById("grid").before(bar);
  document.getElementById("grid").addEventListener("click", (ev) => {
    const chip = ev.target.closest(".scene-chip");
    if (!chip) return;
    ev.preventDefault();
    ev.stopPropagation();
    pick(Number(chip.dataset.scene));
  }, true);
  new MutationObserver(decorateTiles).observe(document.getElementById("grid"), { childList: true });
  decorateTiles();
}

async function setupSceneImage() {
  const sp = document.body.dataset.source;
  if (!(await loadScenes())) return;
  const sid = sceneOf(sp);
  if (sid === null) return;
  const box = h("section", { id: "scene-box", class: "scene-box" },
    h("h3", { text: `Scene ${sid} · ${sceneState.frames[sid].length} frames of one place and light` }),
    h("div", { class: "scene-actions" }, ...sceneControls(sid, () => location.reload(), sp)));
  document.getElementById("ops").before(box);
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.body.dataset.page === "gallery") setupSceneGallery();
  else if (document.body.dataset.page === "image") setupSceneImage();
});
