// The jobs this browser started lately: their ids only, in localStorage, newest first. The list
// asks the server for each one's state and drops the ids it no longer knows.
(function () {
  "use strict";
  const { $, el, t, tn } = window.FG;
  const KEY = "fg-jobs";
  const KEEP = 20;
  let shown = []; // snapshots in the order of the stored ids
  let active = false; // the list shows on the start page only

  function ids() {
    try {
      const stored = JSON.parse(localStorage.getItem(KEY) || "[]");
      return Array.isArray(stored) ? stored.filter((id) => typeof id === "string") : [];
    } catch (e) {
      return [];
    }
  }

  function store(list) {
    localStorage.setItem(KEY, JSON.stringify(list.slice(0, KEEP)));
  }

  function remember(id) {
    store([id, ...ids().filter((other) => other !== id)]);
  }

  function forget(id) {
    store(ids().filter((other) => other !== id));
  }

  function stateText(snap) {
    const done = snap.files.filter((f) => f.state === "done").length;
    const word = t("jobState." + snap.state);
    return snap.state === "done" || snap.state === "cancelled"
      ? word + " · " + tn("photosRedacted", done) : word;
  }

  function label(snap) {
    const first = snap.files.length ? snap.files[0].name : snap.id.slice(0, 8);
    return snap.files.length > 1 ? t("recentName", { name: first, more: snap.files.length - 1 }) : first;
  }

  function render() {
    const list = $("recent-list");
    list.replaceChildren(...shown.map((snap) => el("li", { class: "recent-job " + snap.state },
      el("a", { href: "/jobs/" + snap.id, text: label(snap) }),
      el("span", { class: "state", text: stateText(snap) }))));
    $("recent").hidden = !active || shown.length === 0;
  }

  async function snapshot(id) {
    const response = await window.FG.api("/api/jobs/" + encodeURIComponent(id));
    if (response.status === 404) { forget(id); return null; }
    if (window.FG.refused(response)) throw new Error("token");
    if (!response.ok) return null;
    return response.json();
  }

  // Show the list on the start page; a job the server no longer has leaves it.
  async function load() {
    active = true;
    const wanted = ids();
    let found;
    try {
      found = await Promise.all(wanted.map(snapshot));
    } catch (e) {
      if (e.message !== "token") window.FG.showError("recent", "offline");
      return;
    }
    window.FG.showError("recent", null);
    shown = found.filter(Boolean);
    render();
  }

  function hide() {
    active = false;
    $("recent").hidden = true;
  }

  window.FG.recent = { remember: remember, forget: forget, load: load, hide: hide };
  window.FG.onLanguage(render);
})();
