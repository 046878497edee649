// The review of a finished job whose originals the server kept: a grid of every redacted photo,
// filters (no face found, low-confidence regions, edited), and the editor for one photo.
(function () {
  "use strict";
  const FG = window.FG;
  const { $, el, t, tn } = FG;
  const LOW = 0.6;
  const FETCHERS = 4; // file details asked for at once

  let job = null; // the job under review (app.js's), with .snap
  let details = new Map(); // index -> the file as GET /files/<index> gives it
  // Photos saved from this tab: the API's file view does not list removed regions, so a photo whose
  // only change was a removal counts as edited through this (kept for the tab, across reloads).
  let editedHere = new Set();
  const cards = new Map(); // index -> the grid's <li>
  let filter = "all";

  function photos() {
    const list = [];
    job.snap.files.forEach((f, index) => { if (f.state === "done") list.push(index); });
    return list;
  }

  function flags(index) {
    const detail = details.get(index);
    const regions = detail ? detail.regions : null;
    const faces = regions ? regions.length : job.snap.files[index].faces;
    return {
      none: faces === 0,
      low: !!regions && regions.some((r) => r.source === "auto" && r.score < LOW),
      edited: editedHere.has(index) || (!!detail && (regions.some((r) => r.source === "manual") ||
                                                    (detail.removed || []).length > 0)),
      faces: faces,
    };
  }

  const matches = (index) => filter === "all" || flags(index)[filter];
  const visible = () => photos().filter(matches);

  // A thumbnail's address changes with its regions, so a saved photo's is never taken from the cache.
  function thumbUrl(index) {
    const detail = details.get(index);
    const boxes = detail ? detail.regions.map((r) => r.box.join(",")).join(";") : "";
    let hash = 5381;
    for (let i = 0; i < boxes.length; i++) hash = (hash * 33 + boxes.charCodeAt(i)) >>> 0;
    return job.statusUrl + "/files/" + index + "/preview?v=" + hash.toString(36);
  }

  function badges(index) {
    const f = flags(index);
    const list = [f.none ? el("span", { class: "badge warn", text: t("badgeNone") })
      : el("span", { class: "badge", text: tn("faces", f.faces) })];
    if (f.low) list.push(el("span", { class: "badge warn", text: t("badgeLow") }));
    if (f.edited) list.push(el("span", { class: "badge edited", text: t("badgeEdited") }));
    return list;
  }

  function card(index) {
    if (!cards.has(index)) {
      const item = el("li", null, el("button", { type: "button", class: "card", "data-index": index, onclick: () => openPhoto(index) },
        el("img", { alt: "", loading: "lazy", draggable: "false" }),
        el("span", { class: "card-name" }),
        el("span", { class: "badges" })));
      cards.set(index, item);
    }
    return cards.get(index);
  }

  function updateCard(index) {
    const item = card(index);
    const img = item.querySelector("img");
    if (details.has(index) && img.getAttribute("src") !== thumbUrl(index)) img.src = thumbUrl(index);
    item.querySelector(".card-name").textContent = job.snap.files[index].name;
    item.querySelector(".badges").replaceChildren(...badges(index));
    item.hidden = !matches(index);
  }

  function renderFilters() {
    const all = photos();
    const counted = (key) => all.filter((i) => flags(i)[key]).length;
    $("filter-all").textContent = t("filterAll", { n: all.length });
    $("filter-none").textContent = t("filterNone", { n: counted("none") });
    $("filter-low").textContent = t("filterLow", { n: counted("low") });
    $("filter-edited").textContent = t("filterEdited", { n: counted("edited") });
  }

  function untilText(until) {
    if (!until) return t("reviewIntroNoTime");
    const when = new Date(until * 1000);
    const locale = FG.lang === "zh" ? "zh-CN" : "en";
    const sameDay = when.toDateString() === new Date().toDateString();
    const time = when.toLocaleString(locale, sameDay ? { hour: "2-digit", minute: "2-digit" }
      : { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
    return t("reviewIntroUntil", { time: time });
  }

  function render() {
    if (!job) return;
    $("review-intro").textContent = t("reviewIntro", { until: untilText(job.snap.review.until) });
    renderFilters();
    const grid = $("grid");
    const wanted = photos().map(card);
    if (grid.children.length !== wanted.length || wanted.some((item, i) => grid.children[i] !== item)) grid.replaceChildren(...wanted);
    photos().forEach(updateCard);
    $("grid-empty").hidden = visible().length > 0;
  }

  async function fetchDetail(reviewed, index) {
    try {
      const response = await FG.api(reviewed.statusUrl + "/files/" + index);
      if (response.ok && job === reviewed) details.set(index, await response.json());
    } catch (e) { /* the card keeps its face count; the editor says what went wrong */ }
  }

  async function loadDetails(reviewed) {
    const queue = photos();
    const worker = async () => {
      while (queue.length && job === reviewed) {
        await fetchDetail(reviewed, queue.shift());
        render();
      }
    };
    await Promise.all(Array.from({ length: FETCHERS }, worker));
  }

  function openPhoto(index) {
    FG.editor.open({
      statusUrl: job.statusUrl,
      order: visible,
      name: (i) => job.snap.files[i].name,
      onSaved: saved,
      onClose: (i) => { render(); const button = card(i).querySelector("button"); if (!card(i).hidden) button.focus(); },
    }, index);
  }

  const editedKey = (id) => "fg-edited-" + id;

  function loadEdited(id) {
    try {
      return new Set(JSON.parse(sessionStorage.getItem(editedKey(id)) || "[]"));
    } catch (e) {
      return new Set();
    }
  }

  function saved(index, detail) {
    details.set(index, detail);
    editedHere.add(index);
    sessionStorage.setItem(editedKey(job.id), JSON.stringify([...editedHere]));
    render();
    FG.refreshJob(); // the job's face count changed
  }

  function show(current, snap) {
    if (!job || job.id !== current.id) {
      job = current;
      details = new Map();
      editedHere = loadEdited(current.id);
      cards.clear();
      filter = "all";
      document.querySelector("input[name=filter][value=all]").checked = true;
      $("review").hidden = false;
      render();
      loadDetails(current);
      return;
    }
    $("review").hidden = false;
    render();
  }

  function hide() {
    job = null;
    $("review").hidden = true;
    FG.editorClose();
  }

  for (const input of document.querySelectorAll("input[name=filter]")) {
    input.addEventListener("change", () => { filter = input.value; render(); });
  }
  FG.onLanguage(render);
  FG.review = { show: show, hide: hide };
})();
