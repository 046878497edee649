// Face Privacy Guard page: pick files, upload them as one job, poll its progress, offer the zip.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const maxBytes = Number(document.body.dataset.maxBytes || 0);
  const picked = [];
  let pollTimer = null;

  function sizeText(bytes) {
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(0) + " KB";
    return (bytes / 1024 / 1024).toFixed(1) + " MB";
  }

  function showError(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = !message;
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
      remove.textContent = "Remove";
      remove.setAttribute("aria-label", "Remove " + file.name);
      remove.addEventListener("click", () => { picked.splice(i, 1); renderPicked(); });
      li.append(name, remove);
      list.append(li);
    });
    $("start").disabled = picked.length === 0;
  }

  function add(files) {
    showError("");
    for (const file of files) picked.push(file);
    renderPicked();
  }

  async function errorText(response) {
    try { return (await response.json()).error; } catch (e) { return "The server answered " + response.status + "."; }
  }

  async function start() {
    const total = picked.reduce((sum, f) => sum + f.size, 0);
    if (maxBytes && total > maxBytes) {
      showError("These files add up to " + sizeText(total) + ", more than the server accepts (" +
                sizeText(maxBytes) + "). Remove some and try again.");
      return;
    }
    const form = new FormData();
    picked.forEach((file) => form.append("images", file, file.name));
    form.append("method", document.querySelector("input[name=method]:checked").value);
    form.append("boxes", $("boxes").checked ? "1" : "0");
    form.append("preset", document.querySelector("input[name=preset]:checked").value);
    $("start").disabled = true;
    showError("");
    let response;
    try {
      response = await fetch("/api/jobs", { method: "POST", body: form });
    } catch (e) {
      showError("Could not reach the Face Privacy Guard server. Is it still running? Start it again and retry.");
      $("start").disabled = false;
      return;
    }
    if (response.status !== 202) {
      showError(await errorText(response));
      $("start").disabled = false;
      return;
    }
    const job = await response.json();
    $("pick").hidden = true;
    $("job").hidden = false;
    poll(job);
  }

  function renderJob(snap) {
    const pct = snap.total ? Math.round((100 * snap.processed) / snap.total) : 100;
    $("bar-fill").style.width = pct + "%";
    $("bar").setAttribute("aria-valuenow", String(pct));
    $("counts").textContent = snap.processed + " of " + snap.total + " photos done · " + snap.faces +
      " faces hidden" + (snap.failed ? " · " + snap.failed + " could not be processed" : "");
    const list = $("files");
    list.replaceChildren();
    for (const f of snap.files) {
      const li = document.createElement("li");
      li.className = f.state;
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = f.name;
      const state = document.createElement("span");
      state.className = "state";
      state.textContent = { pending: "waiting", done: f.faces === 1 ? "done · 1 face" : "done · " + f.faces + " faces",
                            failed: "failed", skipped: "skipped" }[f.state] || f.state;
      if (f.error && f.state !== "done") {
        const why = document.createElement("span");
        why.className = "why";
        why.textContent = f.error;
        name.append(why);
      }
      li.append(name, state);
      list.append(li);
    }
  }

  async function poll(job) {
    let snap;
    try {
      const response = await fetch(job.status_url, { cache: "no-store" });
      if (!response.ok) { showError(await errorText(response)); return; }
      snap = await response.json();
    } catch (e) {
      showError("Lost contact with the server. Check that it is running, then reload this page.");
      return;
    }
    renderJob(snap);
    if (snap.state === "queued" || snap.state === "running") {
      pollTimer = setTimeout(() => poll(job), 500);
      return;
    }
    $("job-title").textContent = snap.state === "done" ? "Done" : "The job failed";
    if (snap.error) showError(snap.error);
    if (snap.state === "done") {
      $("download").href = job.result_url;
      $("download").hidden = false;
    }
    $("again").hidden = false;
  }

  const drop = $("drop");
  $("file-input").addEventListener("change", (e) => { add(e.target.files); e.target.value = ""; });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("file-input").click(); } });
  document.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  document.addEventListener("dragleave", (e) => { if (!e.relatedTarget) drop.classList.remove("over"); });
  document.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); add(e.dataTransfer.files); });
  $("start").addEventListener("click", start);
  $("again").addEventListener("click", () => {
    clearTimeout(pollTimer);
    picked.length = 0;
    renderPicked();
    $("job").hidden = true;
    $("download").hidden = true;
    $("again").hidden = true;
    $("pick").hidden = false;
    $("job-title").textContent = "Working…";
    showError("");
  });
})();
