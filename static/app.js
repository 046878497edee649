// The page's main script: pick files, upload them as one job (with progress in bytes), follow the
// job at its own address (/jobs/<id>), cancel it, hand over to the review, offer the zip.
(function () {
  "use strict";
  const FG = window.FG;
  const { $, el, t, tn } = FG;
  const maxBytes = Number(document.body.dataset.maxBytes || 0);
  const picked = [];
  let current = null; // the job shown: {id, statusUrl, resultUrl, snap, upload, before, watch, ...}
  let pollTimer = null;

  // ---- addresses ----
  function jobIdFromPath() {
    const match = /^\/jobs\/([^/]+)\/?$/.exec(location.pathname);
    return match ? decodeURIComponent(match[1]) : null;
  }

  function go(path) {
    if (location.pathname !== path) history.pushState(null, "", path);
    route();
  }

  function route() {
    const id = jobIdFromPath();
    if (id) openJob(id);
    else showStart();
  }

  // ---- choosing files ----
  function renderPicked() {
    const list = $("picked");
    list.replaceChildren(...picked.map((file, i) => el("li", null,
      el("span", { text: file.name + " — " + FG.sizeText(file.size) }),
      el("button", {
        type: "button", class: "remove", text: t("remove"), "aria-label": t("removeLabel", { name: file.name }),
        onclick: () => { picked.splice(i, 1); renderPicked(); },
      }))));
    $("start").disabled = picked.length === 0;
  }

  function add(files) {
    FG.showError("pick", null);
    for (const file of files) picked.push(file);
    renderPicked();
  }

  function showStart() {
    leaveJob();
    $("job").hidden = true;
    $("pick").hidden = false;
    renderPicked();
    FG.recent.load();
  }

  // ---- "before" pictures: the browser's own copies, matched to the job's files by index ----
  async function isZip(file) {
    const head = new Uint8Array(await file.slice(0, 4).arrayBuffer());
    return head[0] === 0x50 && head[1] === 0x4b && head[2] === 3 && head[3] === 4;
  }

  async function plainFiles(files) {
    const zips = await Promise.all(files.map(isZip));
    return files.filter((file, i) => !zips[i]);
  }

  // Each picked photo makes one file of the job, in order; a zip makes one per member, and its
  // members' names carry their folders. So the job's files without a folder are the picked photos,
  // in order, unless a zip had members at its top: then the counts or names differ and no "before" shows.
  function matchBefore(snap, plain) {
    const top = [];
    snap.files.forEach((f, index) => { if (!f.name.includes("/")) top.push(index); });
    const byIndex = new Map();
    if (top.length !== plain.length) return byIndex;
    for (let i = 0; i < top.length; i++) {
      const f = snap.files[top[i]];
      if ((f.original_name ?? f.name) !== plain[i].name.normalize("NFC")) return new Map();
      if (plain[i].type.startsWith("image/")) byIndex.set(top[i], URL.createObjectURL(plain[i]));
    }
    return byIndex;
  }

  // ---- starting a job ----
  function newJob(id) {
    const statusUrl = "/api/jobs/" + encodeURIComponent(id);
    return { id: id, statusUrl: statusUrl, resultUrl: statusUrl + "/result", snap: null, before: new Map(),
             plain: [], watch: null, focused: false };
  }

  function form() {
    const data = new FormData();
    picked.forEach((file) => data.append("images", file, file.name));
    data.append("method", document.querySelector("input[name=method]:checked").value);
    data.append("boxes", $("boxes").checked ? "1" : "0");
    data.append("preset", document.querySelector("input[name=preset]:checked").value);
    data.append("review", $("review-option").checked ? "1" : "0");
    return data;
  }

  async function start() {
    const total = picked.reduce((sum, f) => sum + f.size, 0);
    if (maxBytes && total > maxBytes) {
      FG.showError("pick", "tooBig", { size: FG.sizeText(total), limit: FG.sizeText(maxBytes) });
      return;
    }
    $("start").disabled = true;
    FG.clearErrors();
    const job = newJob(null);
    job.plain = await plainFiles(picked);
    job.upload = FG.upload("/api/jobs", form(), (loaded, size) => renderUpload(job, loaded, size));
    current = job;
    showJobSection();
    renderUpload(job, 0, total);
    let response;
    try {
      response = await job.upload.done;
    } catch (e) {
      backToPick(e.aborted ? ["uploadCancelled", null, true] : ["offline"]);
      return;
    }
    if (response.status !== 202) {
      const problem = response.status === 401 ? null : await FG.failure(response);
      backToPick(problem);
      FG.refused(response);
      return;
    }
    const made = await response.json();
    Object.assign(job, newJob(made.id), { plain: job.plain, statusUrl: made.status_url, resultUrl: made.result_url });
    job.upload = null;
    $("cancel-note").textContent = t("cancelNote");  // the job exists: cancelling now keeps what is done
    FG.recent.remember(made.id);
    picked.length = 0;
    history.pushState(null, "", "/jobs/" + encodeURIComponent(made.id));
    poll();
  }

  // The upload did not make a job: back to the choice, as it was, saying why next to the button.
  function backToPick(problem) {
    current = null;
    $("job").hidden = true;
    $("pick").hidden = false;
    $("start").disabled = picked.length === 0;
    if (problem && problem[2]) FG.showNotice("pick", problem[0]);
    else if (problem) FG.showError("pick", ...problem);
    if (!problem || !problem[2]) $("start").focus();
  }

  function showJobSection() {
    FG.recent.hide();
    $("pick").hidden = true;
    $("job").hidden = false;
    for (const id of ["download", "delete", "again", "approve"]) $(id).hidden = true;
    $("review").hidden = true;
    $("files").replaceChildren();
    $("counts").textContent = "";
    $("cancel-row").hidden = true;
  }

  function setBar(fraction) {
    const pct = Math.round(100 * Math.min(1, Math.max(0, fraction)));
    $("bar-fill").style.width = pct + "%";
    $("bar").setAttribute("aria-valuenow", String(pct));
  }

  function renderUpload(job, loaded, total) {
    if (current !== job || !job.upload) return;
    job.uploaded = [loaded, total];
    $("job-title").textContent = t("uploadingTitle");
    setBar(total ? loaded / total : 0);
    $("counts").textContent = t("uploaded", { loaded: FG.sizeText(loaded), total: FG.sizeText(total) });
    $("cancel-row").hidden = false;
    $("cancel").disabled = false;
    $("cancel-note").textContent = t("cancelUploadNote");
  }

  // ---- following a job ----
  function openJob(id) {
    if (current && current.id === id) {
      showJobSection();
      if (current.snap) renderJob(current.snap);
      poll();
      return;
    }
    leaveJob();
    current = newJob(id);
    showJobSection();
    $("job-title").textContent = t("loading");
    poll();
  }

  function leaveJob() {
    clearTimeout(pollTimer);
    if (current) for (const url of current.before.values()) URL.revokeObjectURL(url);
    if (current && current.upload) current.upload.abort();
    current = null;
    FG.review.hide();
    FG.showError("job", null);
  }

  const RUNNING = ["queued", "running"];

  async function poll() {
    clearTimeout(pollTimer);
    const job = current;
    if (!job || !job.id) return;
    let response;
    try {
      response = await FG.api(job.statusUrl);
    } catch (e) {
      if (current !== job) return;
      job.lost = true;
      FG.showError("job", "lostRetrying");  // a restarting server comes back with the job
      pollTimer = setTimeout(poll, 2000);
      return;
    }
    if (current !== job || FG.refused(response)) return;
    if (job.lost) { job.lost = false; FG.showError("job", null); }
    if (response.status === 404) { gone(job); return; }
    if (!response.ok) {
      FG.showError("job", ...(await FG.failure(response)));
      pollTimer = setTimeout(poll, 2000);
      return;
    }
    const snap = await response.json();
    if (current !== job) return;
    if (!job.snap && job.plain.length) job.before = matchBefore(snap, job.plain);
    job.snap = snap;
    renderJob(snap);
    if (RUNNING.includes(snap.state)) pollTimer = setTimeout(poll, 400);
  }

  FG.refreshJob = () => poll();

  function gone(job) {
    FG.recent.forget(job.id);
    job.snap = null;
    $("job-title").textContent = t("goneTitle");
    setBar(0);
    $("counts").textContent = "";
    $("cancel-row").hidden = true;
    for (const id of ["download", "delete", "approve"]) $(id).hidden = true;
    $("again").hidden = false;
    FG.review.hide();
    $("files").replaceChildren();
    FG.showError("job", "e404");
  }

  // A desktop's or archiver's own files (.DS_Store, __MACOSX/): listed, but not a photo anyone chose.
  const isMetadata = (f) => f.state === "skipped" && f.code === "archive_metadata";

  function count(snap, state) {
    return snap.files.filter((f) => f.state === state).length;
  }

  function skippedParts(snap) {
    const metadata = snap.files.filter(isMetadata).length, skipped = count(snap, "skipped") - metadata;
    return [skipped ? tn("filesSkipped", skipped) : null, metadata ? tn("filesLeftOut", metadata) : null].filter(Boolean);
  }

  function etaText(job, snap) {
    const now = Date.now();
    if (!job.watch || snap.processed < job.watch.processed) job.watch = { at: now, processed: snap.processed };
    const gained = snap.processed - job.watch.processed;
    if (!gained || snap.processed >= snap.total) return "";
    const left = Math.max(1, Math.round(((now - job.watch.at) / gained) * (snap.total - snap.processed) / 1000));
    return t("eta", { time: left < 90 ? t("seconds", { s: left }) : t("minutes", { m: Math.round(left / 60) }) });
  }

  // What was done, failed, skipped and not processed, plainly: a failed photo is never "done".
  function summary(snap) {
    const parts = [tn("photosRedacted", count(snap, "done"))];
    if (count(snap, "failed")) parts.push(tn("photosFailed", count(snap, "failed")));
    parts.push(...skippedParts(snap));
    if (count(snap, "cancelled")) parts.push(tn("photosNotProcessed", count(snap, "cancelled")));
    parts.push(tn("facesHidden", snap.faces));
    return parts.join(" · ");
  }

  function progressText(job, snap) {
    const parts = [tn("progress", snap.total, { done: snap.processed })];
    if (snap.failed) parts.push(tn("photosFailed", snap.failed));
    parts.push(...skippedParts(snap));
    parts.push(tn("facesHidden", snap.faces));
    const eta = snap.state === "running" ? etaText(job, snap) : "";
    return parts.join(" · ") + (eta ? " · " + eta : "");
  }

  function titleKey(job, snap) {
    if (RUNNING.includes(snap.state)) return job.cancelling ? "cancellingTitle" : snap.state === "queued" ? "queued" : "working";
    return { done: "done", failed: "failedTitle", cancelled: "cancelledTitle" }[snap.state] || "done";
  }

  function reviewing(snap) {
    return !!(snap.options && snap.options.review && snap.review && snap.review.originals && snap.state === "done");
  }

  function renderJob(snap) {
    const job = current;
    const finished = !RUNNING.includes(snap.state);
    const review = reviewing(snap);
    $("job-title").textContent = t(titleKey(job, snap));
    $("bar").classList.toggle("still", finished); // a finished job opened later shows its bar full at once
    setBar(snap.total ? snap.processed / snap.total : 1);
    $("counts").textContent = finished ? summary(snap) : progressText(job, snap);
    $("cancel-row").hidden = finished;
    $("cancel").disabled = !!job.cancelling;
    $("cancel-note").textContent = t("cancelNote");
    const result = snap.state === "done" || snap.state === "cancelled";
    $("approve").hidden = !review;
    $("download").hidden = !result;
    $("download").href = job.resultUrl;
    $("download").classList.toggle("secondary", review);
    $("delete").hidden = !finished;
    $("again").hidden = !finished;
    if (snap.error && finished) FG.showError("job", "eOther", { status: snap.state, detail: snap.error });
    if (review) FG.review.show(job, snap);
    else FG.review.hide();
    renderFiles(snap, finished && !review);
    if (finished && !job.focused) {
      job.focused = true;
      (review ? $("approve") : result ? $("download") : $("again")).focus();
    }
  }

  // ---- the list of files ----
  function fileState(f) {
    if (f.state === "done") return tn("fileDone", f.faces);
    return t({ pending: "waiting", failed: "failed", skipped: "skipped", cancelled: "notProcessed" }[f.state] || f.state);
  }

  function figure(src, label, name) {
    return el("figure", null,
      el("img", { loading: "lazy", src: src, alt: name + " — " + t(label) }),
      el("figcaption", { text: t(label) }));
  }

  function previews(job, f, index) {
    const after = figure(job.statusUrl + "/files/" + index + "/preview", "after", f.name);
    const before = job.before.get(index);
    if (!before) return el("div", { class: "preview" }, after);
    const pic = figure(before, "before", f.name);
    pic.querySelector("img").addEventListener("error", () => pic.remove()); // e.g. HEIC: not for browsers
    return el("div", { class: "preview" }, pic, after);
  }

  function renderFiles(snap, withPreviews) {
    const job = current;
    const classes = (f) => "file " + f.state + (isMetadata(f) ? " metadata" : "");
    $("files").replaceChildren(...snap.files.map((f, index) => el("li", { class: classes(f) },
      el("div", { class: "row" },
        el("span", { class: "name", text: f.name }),
        el("span", { class: "state", text: fileState(f) })),
      f.error && f.state !== "done" ? el("span", { class: "why", text: FG.reason(f.code, f.error) }) : null,
      withPreviews && f.state === "done" ? previews(job, f, index) : null)));
  }

  // ---- actions on a job ----
  async function post(job, path) {
    try {
      const response = await FG.api(job.statusUrl + path, { method: "POST" });
      if (FG.refused(response)) return null;
      if (!response.ok) { FG.showError("job", ...(await FG.failure(response))); return null; }
      return response;
    } catch (e) {
      FG.showError("job", "offline");
      return null;
    }
  }

  async function cancel() {
    const job = current;
    if (job.upload) { job.upload.abort(); return; }
    $("cancel").disabled = true;
    job.cancelling = true;
    $("job-title").textContent = t("cancellingTitle");
    if (!(await post(job, "/cancel"))) { job.cancelling = false; $("cancel").disabled = false; return; }
    poll();
  }

  async function approve() {
    const job = current;
    FG.editorClose();
    $("approve").disabled = true;
    const done = await post(job, "/approve");
    $("approve").disabled = false;
    if (!done) return;
    FG.showNotice("job", "approved");
    $("download").click();
    poll();
  }

  async function removeJob() {
    const job = current;
    try {
      const response = await FG.api(job.statusUrl, { method: "DELETE" });
      if (FG.refused(response)) return;
      if (response.status !== 204 && response.status !== 404) { FG.showError("job", ...(await FG.failure(response))); return; }
    } catch (e) {
      FG.showError("job", "offline");
      return;
    }
    FG.recent.forget(job.id);
    go("/");
    FG.showNotice("pick", "deleted");
  }

  function again() {
    picked.length = 0;
    FG.clearErrors();
    go("/");
  }

  // ---- wiring ----
  const drop = $("drop");
  $("file-input").addEventListener("change", (e) => { add(e.target.files); e.target.value = ""; });
  document.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  document.addEventListener("dragleave", (e) => { if (!e.relatedTarget) drop.classList.remove("over"); });
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (!$("pick").hidden) add(e.dataTransfer.files);
  });
  $("start").addEventListener("click", start);
  $("cancel").addEventListener("click", cancel);
  $("approve").addEventListener("click", approve);
  $("again").addEventListener("click", again);
  $("delete").addEventListener("click", removeJob);
  $("home").addEventListener("click", (e) => { e.preventDefault(); FG.clearErrors(); go("/"); });
  window.addEventListener("popstate", route);
  FG.onLanguage(() => {
    renderPicked();
    if (current && current.snap) renderJob(current.snap);
    else if (current && current.uploaded) renderUpload(current, ...current.uploaded);
  });
  FG.onResume(route);
  FG.applyLanguage();
  FG.unlock();
})();
