// Face Privacy Guard page: pick files, upload them as one job, poll its progress, show previews, offer the zip.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const TEXTS = window.FG_TEXTS;
  const maxBytes = Number(document.body.dataset.maxBytes || 0);
  // Off this machine the API asks for an access token. The page sends it as a header on every
  // fetch, and keeps it in a cookie for what the browser fetches by itself (previews, the download).
  const tokenRequired = document.body.dataset.token === "required";
  const cookieName = "faceguard-token-" + (location.port || (location.protocol === "https:" ? "443" : "80"));
  let token = null;
  const picked = [];
  let lang = localStorage.getItem("fg-lang") || ((navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en");
  let pollTimer = null;
  let current = null; // {job, snap, started, previews}
  let lastError = null; // [key, vars] so a language switch re-renders it

  function t(key, vars) {
    let text = (TEXTS[lang] && TEXTS[lang][key]) || TEXTS.en[key] || key;
    for (const [k, v] of Object.entries(vars || {})) text = text.split("{" + k + "}").join(String(v));
    return text;
  }

  // Server reasons are English sentences with a stable code: the page says each code in its own language.
  function reason(f) {
    return (TEXTS[lang].reasons || {})[f.code] || f.error;
  }

  function setToken(value) {
    token = value;
    const cookie = cookieName + "=" + (value ? encodeURIComponent(value) : "") + "; path=/api/; SameSite=Strict";
    document.cookie = value ? cookie : cookie + "; max-age=0";
    if (value) sessionStorage.setItem("fg-token", value);
    else sessionStorage.removeItem("fg-token");
  }

  // Every request to the API carries the token, if the server asks for one.
  function api(url, init) {
    const options = Object.assign({}, init);
    if (token) options.headers = Object.assign({}, options.headers, { Authorization: "Bearer " + token });
    return fetch(url, options);
  }

  // Ask for the token: the job and the choice of photos stay as they were behind the form.
  function askToken(key, vars) {
    for (const id of ["pick", "job"]) $(id).hidden = true;
    $("access").hidden = false;
    showError(key, vars);
    $("token-input").focus();
  }

  function refused(response) {
    if (response.status !== 401) return false;
    setToken(null);
    askToken("tokenExpired");
    return true;
  }

  // Check a token with the server: null if it is the one, else the error to show ([key, vars]).
  async function tryToken(value) {
    let response;
    try {
      response = await fetch("/api/access", { headers: { Authorization: "Bearer " + value }, cache: "no-store" });
    } catch (e) {
      return ["offline"];
    }
    if (response.status === 204) { setToken(value); return null; }
    return response.status === 401 ? ["tokenWrong"] : await failure(response);
  }

  function resume() {
    $("access").hidden = true;
    showError(null);
    if (current) { $("job").hidden = false; poll(); } else $("pick").hidden = false;
  }

  // A token in the address (#token=..., which never reaches the server's logs) or from earlier in this tab.
  async function unlock() {
    if (!tokenRequired) return;
    const match = /^#token=(.+)$/.exec(location.hash);
    if (match) history.replaceState(null, "", location.pathname + location.search);
    const given = match ? decodeURIComponent(match[1]) : sessionStorage.getItem("fg-token");
    $("pick").hidden = true;
    const problem = given ? await tryToken(given) : [null];
    if (!problem) resume();
    else askToken(...(match || problem[0] !== "tokenWrong" ? problem : ["tokenExpired"]));
  }

  async function submitToken(e) {
    e.preventDefault();
    const value = $("token-input").value.trim();
    if (!value) return;
    $("token-submit").disabled = true;
    const problem = await tryToken(value);
    $("token-submit").disabled = false;
    if (problem) { showError(...problem); return; }
    $("token-input").value = "";
    resume();
  }

  function applyLanguage() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.title = t("title");
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    $("lang").textContent = lang === "zh" ? "English" : "中文";
    renderPicked();
    if (current && current.snap) renderJob(current.snap);
    if (lastError) showError(...lastError);
  }

  function sizeText(bytes) {
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(0) + " KB";
    if (bytes < 1024 * 1024 * 1024) return (bytes / 1024 / 1024).toFixed(1) + " MB";
    return (bytes / 1024 / 1024 / 1024).toFixed(1) + " GB";
  }

  function showError(key, vars) {
    lastError = key ? [key, vars] : null;
    const box = $("error");
    box.textContent = key ? t(key, vars) : "";
    box.classList.toggle("notice", key === "deleted");
    box.hidden = !key;
  }

  function renderPicked() {
    const list = $("picked");
    list.replaceChildren();
    picked.forEach((file, i) => {
      const li = document.createElement("li");
      const name = document.createElement("span");
      name.textContent = file.name + " — " + sizeText(file.size);
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "remove";
      remove.textContent = t("remove");
      remove.setAttribute("aria-label", t("removeLabel", { name: file.name }));
      remove.addEventListener("click", () => { picked.splice(i, 1); renderPicked(); });
      li.append(name, remove);
      list.append(li);
    });
    $("start").disabled = picked.length === 0;
  }

  function add(files) {
    showError(null);
    for (const file of files) picked.push(file);
    renderPicked();
  }

  async function failure(response) {
    let detail = "";
    try { detail = (await response.json()).error || ""; } catch (e) { /* not JSON */ }
    const key = { 400: "e400", 404: "e404", 413: "e413", 415: "e415", 507: "e507" }[response.status] || "eOther";
    return [key, { status: response.status, detail: detail }];
  }

  async function start() {
    const total = picked.reduce((sum, f) => sum + f.size, 0);
    if (maxBytes && total > maxBytes) {
      showError("tooBig", { size: sizeText(total), limit: sizeText(maxBytes) });
      return;
    }
    const form = new FormData();
    picked.forEach((file) => form.append("images", file, file.name));
    form.append("method", document.querySelector("input[name=method]:checked").value);
    form.append("boxes", $("boxes").checked ? "1" : "0");
    form.append("preset", document.querySelector("input[name=preset]:checked").value);
    $("start").disabled = true;
    showError(null);
    let response;
    try {
      response = await api("/api/jobs", { method: "POST", body: form });
    } catch (e) {
      showError("offline");
      $("start").disabled = false;
      return;
    }
    if (response.status !== 202) {
      $("start").disabled = false;
      if (!refused(response)) showError(...(await failure(response)));
      return;
    }
    // Before-previews come from the browser's own copy of each picked image: the server keeps no originals.
    const local = {};
    for (const file of picked) if (file.type.startsWith("image/")) local[file.name] = URL.createObjectURL(file);
    current = { job: await response.json(), snap: null, started: Date.now(), local: local };
    $("pick").hidden = true;
    $("job").hidden = false;
    poll();
  }

  function etaText(snap) {
    if (!current || !snap.processed || snap.processed >= snap.total) return "";
    const perFile = (Date.now() - current.started) / snap.processed;
    const left = Math.max(1, Math.round((perFile * (snap.total - snap.processed)) / 1000));
    return t("eta", { time: left < 90 ? t("seconds", { s: left }) : t("minutes", { m: Math.round(left / 60) }) });
  }

  function fileState(f) {
    if (f.state === "done") return f.faces === 1 ? t("faces1") : t("facesN", { n: f.faces });
    return t({ pending: "waiting", failed: "failed", skipped: "skipped" }[f.state] || f.state);
  }

  function preview(f, index, finished) {
    if (!finished || f.state !== "done") return null;
    const box = document.createElement("div");
    box.className = "preview";
    const before = current.local[f.original_name ?? f.name];
    const pairs = before ? [[before, "before"], [null, "after"]] : [[null, "after"]];
    for (const [src, label] of pairs) {
      const fig = document.createElement("figure");
      const img = document.createElement("img");
      img.loading = "lazy";
      img.alt = f.name + " — " + t(label);
      img.src = src || current.job.status_url + "/files/" + index + "/preview";
      const cap = document.createElement("figcaption");
      cap.textContent = t(label);
      fig.append(img, cap);
      box.append(fig);
    }
    return box;
  }

  function renderJob(snap) {
    const pct = snap.total ? Math.round((100 * snap.processed) / snap.total) : 100;
    const finished = snap.state === "done" || snap.state === "failed";
    $("bar-fill").style.width = pct + "%";
    $("bar").setAttribute("aria-valuenow", String(pct));
    $("counts").textContent = t("counts", { n: snap.processed, total: snap.total, faces: snap.faces }) +
      (snap.failed ? t("countsFailed", { failed: snap.failed }) : "") + (finished ? "" : etaText(snap));
    $("job-title").textContent = snap.state === "queued" ? t("queued") : !finished ? t("working")
      : snap.state === "done" ? t("done") : t("failedTitle");
    const list = $("files");
    list.replaceChildren();
    snap.files.forEach((f, index) => {
      const li = document.createElement("li");
      li.className = "file " + f.state;
      const row = document.createElement("div");
      row.className = "row";
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = f.name;
      const state = document.createElement("span");
      state.className = "state";
      state.textContent = fileState(f);
      row.append(name, state);
      li.append(row);
      if (f.error && f.state !== "done") {
        const why = document.createElement("span");
        why.className = "why";
        why.textContent = reason(f);
        li.append(why);
      }
      const pics = preview(f, index, finished);
      if (pics) li.append(pics);
      list.append(li);
    });
  }

  async function poll() {
    const job = current.job;
    let snap;
    try {
      const response = await api(job.status_url, { cache: "no-store" });
      if (refused(response)) return;
      if (!response.ok) { showError(...(await failure(response))); $("again").hidden = false; return; }
      snap = await response.json();
    } catch (e) {
      showError("lost");
      return;
    }
    current.snap = snap;
    renderJob(snap);
    if (snap.state === "queued" || snap.state === "running") {
      pollTimer = setTimeout(poll, 400);
      return;
    }
    if (snap.error) showError("eOther", { status: snap.state, detail: snap.error });
    if (snap.state === "done") {
      $("download").href = job.result_url;
      $("download").hidden = false;
    }
    $("delete").hidden = false;
    $("again").hidden = false;
    $("download").focus();
  }

  function reset() {
    clearTimeout(pollTimer);
    if (current) for (const url of Object.values(current.local)) URL.revokeObjectURL(url);
    current = null;
    picked.length = 0;
    renderPicked();
    $("files").replaceChildren();
    for (const id of ["download", "delete", "again", "job"]) $(id).hidden = true;
    $("pick").hidden = false;
    showError(null);
  }

  async function removeJob() {
    try {
      const response = await api(current.job.status_url, { method: "DELETE" });
      if (refused(response)) return;
      if (response.status !== 204 && response.status !== 404) { showError(...(await failure(response))); return; }
    } catch (e) {
      showError("offline");
      return;
    }
    reset();
    showError("deleted");
  }

  const drop = $("drop");
  $("file-input").addEventListener("change", (e) => { add(e.target.files); e.target.value = ""; });
  document.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  document.addEventListener("dragleave", (e) => { if (!e.relatedTarget) drop.classList.remove("over"); });
  document.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); if (!$("pick").hidden) add(e.dataTransfer.files); });
  $("start").addEventListener("click", start);
  $("access-form").addEventListener("submit", submitToken);
  $("again").addEventListener("click", reset);
  $("delete").addEventListener("click", removeJob);
  $("lang").addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    localStorage.setItem("fg-lang", lang);
    applyLanguage();
  });
  applyLanguage();
  unlock();
})();
