// The review's photo editor: one photo at full resolution, zoomed and panned, its regions drawn as
// outlines over the original (or the redacted output). Regions are added by dragging, moved, resized by
// their corners, deleted; undo/redo; Save sends the complete list. Boxes are in output pixels, which
// are the upright original's pixels too, so the SVG over the photo simply uses them as its viewBox.
(function () {
  "use strict";
  const FG = window.FG;
  const { $, t, tn } = FG;
  const SVG = "http://www.w3.org/2000/svg";
  const LOW = 0.6; // an auto region scored below this is "low confidence"
  const MIN_DRAG = 4; // screen pixels: a shorter drag is a click
  const HANDLE = 12; // screen pixels
  const STEP = 1.25; // one zoom step
  const MAX_ZOOM = 8;
  const NUDGE = 10; // screen pixels per arrow key

  const ed = {
    open: false, ctx: null, index: -1, detail: null, width: 0, height: 0,
    regions: [], saved: "", past: [], future: [], selected: -1,
    zoom: 1, view: "original", hand: false, space: false, drag: null, saving: false, version: "",
  };

  // ---- small helpers ----
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
  const clone = (regions) => regions.map((r) => Object.assign({}, r, { box: r.box.slice() }));
  const fileUrl = (index) => ed.ctx.statusUrl + "/files/" + index;
  const editable = () => !!(ed.detail && ed.detail.reviewable);
  const isLow = (r) => r.source === "auto" && typeof r.score === "number" && r.score < LOW;

  function whole(box) {
    const x = clamp(Math.round(box[0]), 0, ed.width - 1);
    const y = clamp(Math.round(box[1]), 0, ed.height - 1);
    return [x, y, clamp(Math.round(box[2]), 1, ed.width - x), clamp(Math.round(box[3]), 1, ed.height - y)];
  }

  function signature(regions) {
    return JSON.stringify(regions.map((r) => whole(r.box)));
  }

  const dirty = () => !!ed.detail && signature(ed.regions) !== ed.saved;

  function svgNode(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    return node;
  }

  // What a region is, in words: "centerface 0.87" or "added by you".
  function regionTag(r) {
    if (r.source === "manual") return t("edManual");
    const score = typeof r.score === "number" ? " " + r.score.toFixed(2) : "";
    return r.engine + score + (isLow(r) ? " · " + t("edLow") : "");
  }

  // ---- opening, moving between photos, closing ----
  async function open(ctx, index) {
    ed.ctx = ctx;
    ed.open = true;
    $("editor").hidden = false;
    document.querySelector("main").inert = true;
    document.body.classList.add("editing");
    FG.showError("editor", null);
    await load(index);
    $("ed-stage").focus({ preventScroll: true });
  }

  async function load(index) {
    Object.assign(ed, { index: index, detail: null, regions: [], past: [], future: [], selected: -1, drag: null });
    renderHead();
    renderInfo();
    $("ed-img").removeAttribute("src");
    $("ed-svg").replaceChildren();
    let response;
    try {
      response = await FG.api(fileUrl(index));
    } catch (e) {
      FG.showError("editor", "offline");
      return;
    }
    if (ed.index !== index || FG.refused(response)) return;
    if (!response.ok) { FG.showError("editor", ...(await FG.failure(response))); return; }
    const detail = await response.json();
    if (ed.index !== index) return; // moved on meanwhile
    take(detail);
    if (!editable()) ed.view = "redacted";
    showImage();
    fit();
    render();
  }

  function take(detail) {
    ed.detail = detail;
    ed.width = detail.width;
    ed.height = detail.height;
    ed.regions = clone(detail.regions);
    ed.saved = signature(ed.regions);
  }

  // Leaving a photo saves it first: a person who moves on means to keep what they did.
  async function step(delta) {
    const order = ed.ctx.order();
    const pos = order.indexOf(ed.index) + delta;
    if (pos < 0 || pos >= order.length || !(await save())) return;
    FG.showError("editor", null);
    await load(order[pos]);
  }

  async function close() {
    if (!(await save())) return;
    closeNow();
  }

  function closeNow() {
    if (!ed.open) return;
    ed.open = false;
    ed.drag = null;
    $("editor").hidden = true;
    document.querySelector("main").inert = false;
    document.body.classList.remove("editing");
    ed.ctx.onClose(ed.index);
  }

  // ---- the image and the zoom ----
  function showImage() {
    const url = ed.view === "original" ? fileUrl(ed.index) + "/original"
      : fileUrl(ed.index) + "/redacted?v=" + encodeURIComponent(ed.saved);
    const img = $("ed-img");
    img.onerror = () => { if (ed.view === "original") FG.showError("editor", "originalGone"); };
    img.src = url;
    img.alt = ed.detail.name + " — " + t(ed.view === "original" ? "edOriginal" : "edRedacted");
    $("ed-view").setAttribute("aria-pressed", String(ed.view === "redacted"));
    $("ed-view").textContent = t(ed.view === "original" ? "edShowRedacted" : "edShowOriginal");
  }

  function fitScale() {
    const stage = $("ed-stage");
    return Math.min((stage.clientWidth - 16) / ed.width, (stage.clientHeight - 16) / ed.height);
  }

  function layout() {
    const canvas = $("ed-canvas");
    canvas.style.width = ed.width * ed.zoom + "px";
    canvas.style.height = ed.height * ed.zoom + "px";
    $("ed-svg").setAttribute("viewBox", "0 0 " + ed.width + " " + ed.height);
    $("ed-zoom").textContent = Math.round(ed.zoom * 100) + "%";
  }

  // Zoom about a point on the screen (the pointer, or the middle of the view), which stays put.
  function setZoom(zoom, at) {
    if (!ed.detail) return;
    const stage = $("ed-stage");
    const view = stage.getBoundingClientRect();
    const anchor = at || { x: view.left + view.width / 2, y: view.top + view.height / 2 };
    const before = $("ed-svg").getBoundingClientRect();
    const ix = (anchor.x - before.left) / ed.zoom;
    const iy = (anchor.y - before.top) / ed.zoom;
    ed.zoom = clamp(zoom, Math.min(fitScale(), 1) / 4, MAX_ZOOM);
    layout();
    const after = $("ed-svg").getBoundingClientRect();
    stage.scrollLeft += after.left + ix * ed.zoom - anchor.x;
    stage.scrollTop += after.top + iy * ed.zoom - anchor.y;
    render();
  }

  function fit() {
    if (!ed.detail) return;
    ed.zoom = Math.min(1, fitScale());
    layout();
    render();
  }

  // ---- drawing ----
  function render() {
    renderHead();
    drawRegions();
    renderInfo();
    renderButtons();
  }

  function renderHead() {
    const order = ed.ctx ? ed.ctx.order() : [];
    $("ed-name").textContent = ed.ctx ? ed.ctx.name(ed.index) : "";
    $("ed-pos").textContent = t("edPosition", { n: order.indexOf(ed.index) + 1, total: order.length });
  }

  function drawRegions() {
    const svg = $("ed-svg");
    const focused = svg.contains(document.activeElement) ? Number(document.activeElement.dataset.index) : -1;
    const px = 1 / ed.zoom; // one screen pixel, in image pixels
    svg.replaceChildren(...ed.regions.map((r, i) => regionNode(r, i, px)));
    if (ed.drag && ed.drag.type === "draw" && ed.drag.box) {
      const [x, y, w, h] = ed.drag.box;
      svg.append(svgNode("rect", { x: x, y: y, width: w, height: h, class: "drawing" }));
    }
    // A region keeps the focus through a redraw while it stays the chosen one.
    const again = focused >= 0 && focused === ed.selected && svg.querySelector('[data-index="' + focused + '"]');
    if (again) again.focus({ preventScroll: true });
  }

  function regionNode(r, i, px) {
    const [x, y, w, h] = r.box;
    const selected = i === ed.selected;
    const group = svgNode("g", {
      class: "region " + r.source + (isLow(r) ? " low" : "") + (selected ? " selected" : ""),
      "data-index": i, tabindex: editable() ? 0 : -1, role: "button",
      "aria-label": t("edRegionLabel", { n: i + 1, what: regionTag(r) }), "aria-pressed": String(selected),
    });
    const box = { x: x, y: y, width: w, height: h };
    group.append(svgNode("rect", Object.assign({ class: "halo" }, box)), svgNode("rect", Object.assign({ class: "line" }, box)));
    const size = 13 * px;
    const above = y - 5 * px > size;
    const text = regionTag(r);
    const wide = text.length * size * 0.62; // about; keeps the label inside the photo
    const label = svgNode("text", { x: clamp(x, 0, Math.max(0, ed.width - wide)), y: above ? y - 5 * px : y + size + 2 * px,
                                    "font-size": size, "stroke-width": 3 * px, class: "tag" });
    label.textContent = text;
    group.append(label);
    if (selected && editable()) {
      for (const [corner, cx, cy] of [["nw", x, y], ["ne", x + w, y], ["sw", x, y + h], ["se", x + w, y + h]]) {
        group.append(svgNode("rect", { class: "handle", "data-corner": corner, x: cx - HANDLE * px / 2,
                                       y: cy - HANDLE * px / 2, width: HANDLE * px, height: HANDLE * px }));
      }
    }
    return group;
  }

  function renderInfo() {
    let text;
    if (!ed.detail) text = t("loading");
    else if (ed.saving) text = t("edSaving");
    else if (ed.selected >= 0) {
      const r = ed.regions[ed.selected];
      const [x, y, w, h] = whole(r.box);
      text = t("edSelected", { n: ed.selected + 1, total: ed.regions.length, what: regionTag(r), w: w, h: h, x: x, y: y });
    } else {
      text = tn("edBoxes", ed.regions.length) + " · " +
        (!editable() ? t("edReadOnly") : dirty() ? t("edUnsaved") : t("edNoChanges"));
    }
    $("ed-info").textContent = text;
  }

  function renderButtons() {
    const can = editable() && !ed.saving;
    $("ed-add").disabled = !can;
    $("ed-delete").disabled = !can || ed.selected < 0;
    $("ed-undo").disabled = !can || !ed.past.length;
    $("ed-redo").disabled = !can || !ed.future.length;
    $("ed-save").disabled = !can || !dirty();
    $("ed-view").disabled = !editable();
    const order = ed.ctx ? ed.ctx.order() : [];
    $("ed-prev").disabled = order.indexOf(ed.index) <= 0;
    $("ed-next").disabled = order.indexOf(ed.index) >= order.length - 1;
    $("ed-hand").setAttribute("aria-pressed", String(ed.hand));
    $("ed-stage").classList.toggle("panning", ed.hand || ed.space);
  }

  // ---- editing, with undo ----
  function remember(before) {
    ed.past.push(before);
    if (ed.past.length > 200) ed.past.shift();
    ed.future = [];
  }

  function change(mutate) {
    if (!editable()) return;
    const before = clone(ed.regions);
    mutate();
    if (signature(before) === signature(ed.regions)) return;
    remember(before);
    render();
  }

  // Undo takes a state from the past and leaves the current one for redo; redo the other way round.
  function travel(from, to) {
    if (!editable() || !from.length) return;
    to.push(clone(ed.regions));
    ed.regions = from.pop();
    ed.selected = -1;
    render();
  }

  function undo() { travel(ed.past, ed.future); }

  function redo() { travel(ed.future, ed.past); }

  function select(i) {
    if (ed.selected === i) return;
    ed.selected = i;
    render();
  }

  // A region a person moved or resized is theirs now (the server keeps the detector's only for an exact box).
  function edited(r) {
    return Object.assign(r, { source: "manual", engine: "manual", score: null });
  }

  function deleteSelected() {
    if (ed.selected < 0) return;
    change(() => { ed.regions.splice(ed.selected, 1); ed.selected = -1; });
    $("ed-stage").focus({ preventScroll: true });
  }

  // A new box in the middle of what is in view, for keyboards (then arrows move it, Shift+arrows resize it).
  function addBox() {
    if (!editable()) return;
    const view = $("ed-stage").getBoundingClientRect();
    const img = $("ed-svg").getBoundingClientRect();
    const side = Math.max(8, Math.round(Math.min(ed.width, ed.height, view.width / ed.zoom, view.height / ed.zoom) / 5));
    const cx = clamp((view.left + view.width / 2 - img.left) / ed.zoom, side / 2, ed.width - side / 2);
    const cy = clamp((view.top + view.height / 2 - img.top) / ed.zoom, side / 2, ed.height - side / 2);
    change(() => {
      ed.regions.push(edited({ box: whole([cx - side / 2, cy - side / 2, side, side]) }));
      ed.selected = ed.regions.length - 1;
    });
    focusRegion(ed.selected);
  }

  function focusRegion(i) {
    const node = $("ed-svg").querySelector('[data-index="' + i + '"]');
    if (node) node.focus({ preventScroll: true });
  }

  function nudge(dx, dy, resize) {
    const r = ed.regions[ed.selected];
    const d = Math.max(1, Math.round(NUDGE / ed.zoom));
    change(() => {
      const [x, y, w, h] = r.box;
      r.box = resize ? whole([x, y, w + dx * d, h + dy * d])
        : whole([clamp(x + dx * d, 0, ed.width - w), clamp(y + dy * d, 0, ed.height - h), w, h]);
      edited(r);
    });
  }

  // ---- saving ----
  async function save() {
    if (!dirty()) return true;
    if (ed.saving) return false;
    const index = ed.index;
    ed.saving = true;
    render();
    let response;
    try {
      response = await FG.json(fileUrl(index) + "/regions", "PUT", { regions: ed.regions.map((r) => whole(r.box)) });
    } catch (e) {
      response = null;
    }
    ed.saving = false;
    if (!response) { FG.showError("editor", "offline"); render(); return false; }
    if (FG.refused(response)) return false;
    if (!response.ok) {
      FG.showError("editor", ...(await FG.failure(response)));
      if (response.status === 409) FG.refreshJob(); // e.g. the originals expired: the job says so
      render();
      return false;
    }
    const detail = await response.json();
    if (ed.index === index) {
      take(detail); // the server's list, in the order sent: the chosen box stays chosen
      if (ed.selected >= ed.regions.length) ed.selected = -1;
      if (ed.view === "redacted") showImage();
      render();
    }
    FG.showNotice("editor", "edSaved", { name: detail.name });
    ed.ctx.onSaved(index, detail);
    return true;
  }

  // ---- pointer: draw, move, resize, pan ----
  function imagePoint(e) {
    const rect = $("ed-svg").getBoundingClientRect();
    return { x: clamp((e.clientX - rect.left) / ed.zoom, 0, ed.width), y: clamp((e.clientY - rect.top) / ed.zoom, 0, ed.height) };
  }

  function hit(p) {
    const slack = 3 / ed.zoom;
    const inside = (i) => {
      const [x, y, w, h] = ed.regions[i].box;
      return p.x >= x - slack && p.x <= x + w + slack && p.y >= y - slack && p.y <= y + h + slack;
    };
    if (ed.selected >= 0 && inside(ed.selected)) return ed.selected;
    for (let i = ed.regions.length - 1; i >= 0; i--) if (inside(i)) return i;
    return -1;
  }

  function onPointerDown(e) {
    if (!ed.detail || (e.button !== 0 && e.button !== 1)) return;
    const stage = $("ed-stage");
    e.preventDefault();
    $("ed-svg").setPointerCapture(e.pointerId);
    if (ed.hand || ed.space || e.button === 1 || !editable()) {
      ed.drag = { type: "pan", x: e.clientX, y: e.clientY, left: stage.scrollLeft, top: stage.scrollTop };
      return;
    }
    const p = imagePoint(e);
    const before = clone(ed.regions);
    const handle = e.target.closest && e.target.closest(".handle");
    if (handle && ed.selected >= 0) {
      ed.drag = { type: "resize", corner: handle.dataset.corner, before: before };
      return;
    }
    const i = hit(p);
    if (i >= 0) {
      select(i);
      const [x, y] = ed.regions[i].box;
      ed.drag = { type: "move", dx: p.x - x, dy: p.y - y, before: before, sx: e.clientX, sy: e.clientY };
      return;
    }
    select(-1);
    ed.drag = { type: "draw", x0: p.x, y0: p.y, sx: e.clientX, sy: e.clientY, box: null };
  }

  function onPointerMove(e) {
    const d = ed.drag;
    if (!d) return;
    if (d.type === "pan") {
      $("ed-stage").scrollLeft = d.left - (e.clientX - d.x);
      $("ed-stage").scrollTop = d.top - (e.clientY - d.y);
      return;
    }
    const p = imagePoint(e);
    if (d.type === "draw") {
      d.box = [Math.min(d.x0, p.x), Math.min(d.y0, p.y), Math.abs(p.x - d.x0), Math.abs(p.y - d.y0)];
    } else if (d.type === "move") {
      if (Math.hypot(e.clientX - d.sx, e.clientY - d.sy) < MIN_DRAG && !d.moving) return;
      d.moving = true;
      const r = ed.regions[ed.selected];
      const [, , w, h] = r.box;
      r.box = [clamp(p.x - d.dx, 0, ed.width - w), clamp(p.y - d.dy, 0, ed.height - h), w, h];
    } else if (d.type === "resize") {
      resizeTo(ed.regions[ed.selected], d.corner, p);
    }
    drawRegions();
  }

  // Drag one corner; the opposite corner stays where it was.
  function resizeTo(r, corner, p) {
    const [x, y, w, h] = r.box;
    const fixedX = corner.includes("w") ? x + w : x;
    const fixedY = corner.includes("n") ? y + h : y;
    r.box = [Math.min(fixedX, p.x), Math.min(fixedY, p.y), Math.max(1, Math.abs(p.x - fixedX)), Math.max(1, Math.abs(p.y - fixedY))];
  }

  function onPointerUp() {
    const d = ed.drag;
    ed.drag = null;
    if (!d || d.type === "pan") return;
    if (d.type === "draw") {
      const big = d.box && d.box[2] * ed.zoom >= MIN_DRAG && d.box[3] * ed.zoom >= MIN_DRAG;
      if (big) {
        remember(clone(ed.regions));
        ed.regions.push(edited({ box: whole(d.box) }));
        ed.selected = ed.regions.length - 1;
      }
    } else {
      const r = ed.regions[ed.selected];
      r.box = whole(r.box);
      if (signature(d.before) !== signature(ed.regions)) {
        edited(r);
        remember(d.before);
      }
    }
    render();
  }

  function onWheel(e) {
    if (!ed.detail || e.shiftKey) return; // Shift+wheel scrolls sideways, as everywhere
    e.preventDefault();
    setZoom(ed.zoom * Math.exp(clamp(-e.deltaY, -100, 100) * 0.003), { x: e.clientX, y: e.clientY });
  }

  // ---- keys ----
  const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

  function onKeyDown(e) {
    if (!ed.open) return;
    const key = e.key;
    const mod = e.ctrlKey || e.metaKey;
    if (mod && !e.altKey) {
      const lower = key.toLowerCase();
      if (lower === "z") e.shiftKey ? redo() : undo();
      else if (lower === "y") redo();
      else if (lower === "s") save();
      else return;
      e.preventDefault();
      return;
    }
    if (e.altKey || mod) return;
    const onControl = document.activeElement && document.activeElement.matches("button, summary");
    if (ARROWS[key]) {
      const [dx, dy] = ARROWS[key];
      if (ed.selected >= 0 && editable()) nudge(dx, dy, e.shiftKey);
      else if (dx) step(dx);
      else return;
    } else if (key === " ") {
      if (onControl) return; // Space presses the button
      ed.space = true;
      renderButtons();
    } else if (!handleKey(key)) {
      return;
    }
    e.preventDefault();
  }

  function handleKey(key) {
    const actions = {
      "+": () => setZoom(ed.zoom * STEP), "=": () => setZoom(ed.zoom * STEP),
      "-": () => setZoom(ed.zoom / STEP), "_": () => setZoom(ed.zoom / STEP),
      "0": fit, "1": () => setZoom(1),
      j: () => step(1), k: () => step(-1),
      Delete: deleteSelected, Backspace: deleteSelected,
      a: addBox, o: toggleView, h: toggleHand,
      Escape: escape,
    };
    const action = actions[key.length === 1 ? key.toLowerCase() : key] || actions[key];
    if (!action) return false;
    action();
    return true;
  }

  function escape() {
    if (ed.drag) { cancelDrag(); return; }
    if (ed.selected >= 0) { $("ed-stage").focus({ preventScroll: true }); select(-1); return; }
    close();
  }

  function cancelDrag() {
    if (ed.drag.before) ed.regions = ed.drag.before;
    ed.drag = null;
    render();
  }

  function onKeyUp(e) {
    if (e.key === " " && ed.space) { ed.space = false; renderButtons(); }
  }

  function toggleView() {
    if (!editable()) return;
    ed.view = ed.view === "original" ? "redacted" : "original";
    showImage();
  }

  function toggleHand() {
    ed.hand = !ed.hand;
    renderButtons();
  }

  // ---- wiring ----
  const svg = $("ed-svg");
  svg.addEventListener("pointerdown", onPointerDown);
  svg.addEventListener("pointermove", onPointerMove);
  svg.addEventListener("pointerup", onPointerUp);
  svg.addEventListener("pointercancel", () => { if (ed.drag) cancelDrag(); });
  svg.addEventListener("focusin", (e) => {
    const node = e.target.closest("[data-index]");
    if (node) select(Number(node.dataset.index));
  });
  $("ed-stage").addEventListener("wheel", onWheel, { passive: false });
  document.addEventListener("keydown", onKeyDown);
  document.addEventListener("keyup", onKeyUp);
  $("ed-close").addEventListener("click", close);
  $("ed-prev").addEventListener("click", () => step(-1));
  $("ed-next").addEventListener("click", () => step(1));
  $("ed-zoom-in").addEventListener("click", () => setZoom(ed.zoom * STEP));
  $("ed-zoom-out").addEventListener("click", () => setZoom(ed.zoom / STEP));
  $("ed-fit").addEventListener("click", fit);
  $("ed-hand").addEventListener("click", toggleHand);
  $("ed-view").addEventListener("click", toggleView);
  $("ed-add").addEventListener("click", addBox);
  $("ed-delete").addEventListener("click", deleteSelected);
  $("ed-undo").addEventListener("click", undo);
  $("ed-redo").addEventListener("click", redo);
  $("ed-save").addEventListener("click", save);
  FG.onLanguage(() => { if (ed.open && ed.detail) { showImage(); render(); } });

  FG.editor = { open: open };
  FG.editorClose = closeNow;
})();
