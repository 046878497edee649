// What the page's scripts share: texts and plurals, elements, errors shown where they belong,
// and the API with its access token. Everything hangs off window.FG.
(function () {
  "use strict";
  const TEXTS = window.FG_TEXTS;
  const FG = (window.FG = {});
  const $ = (FG.$ = (id) => document.getElementById(id));

  FG.lang = localStorage.getItem("fg-lang") ||
    ((navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en");

  FG.t = function (key, vars) {
    let text = (TEXTS[FG.lang] || {})[key];
    if (text === undefined) text = TEXTS.en[key];
    if (text === undefined) text = key;
    for (const [k, v] of Object.entries(vars || {})) text = text.split("{" + k + "}").join(String(v));
    return text;
  };

  // English says "1 face" but "2 faces" (keys "x.one" and "x.other"); Chinese has one form, key "x".
  FG.tn = function (key, n, vars) {
    const form = key + (n === 1 ? ".one" : ".other");
    const table = TEXTS[FG.lang] || {};
    const chosen = table[form] !== undefined ? form : table[key] !== undefined ? key : form;
    return FG.t(chosen, Object.assign({ n: n }, vars));
  };

  // Server reasons are English sentences with a stable code: the page says each code in its own language.
  FG.reason = function (code, english) {
    return ((TEXTS[FG.lang] || {}).reasons || {})[code] || english || "";
  };

  // el("button", {class: "x", text: "Hi", onclick: f}, child, ...)
  FG.el = function (tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    node.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
    return node;
  };

  FG.sizeText = function (bytes) {
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(0) + " KB";
    if (bytes < 1024 * 1024 * 1024) return (bytes / 1024 / 1024).toFixed(1) + " MB";
    return (bytes / 1024 / 1024 / 1024).toFixed(1) + " GB";
  };

  // ---- languages ----
  const languageListeners = [];
  FG.onLanguage = (listener) => languageListeners.push(listener);

  FG.applyLanguage = function () {
    document.documentElement.lang = FG.lang === "zh" ? "zh-CN" : "en";
    document.title = FG.t("title");
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = FG.t(node.dataset.i18n);
    for (const node of document.querySelectorAll("[data-i18n-label]")) {
      node.setAttribute("aria-label", FG.t(node.dataset.i18nLabel));
      node.title = FG.t(node.dataset.i18nLabel);
    }
    $("lang").textContent = FG.lang === "zh" ? "English" : "中文";
    for (const listener of languageListeners) listener();
    for (const [area, said] of Object.entries(messages)) if (said) render(area, said);
  };

  FG.switchLanguage = function () {
    FG.lang = FG.lang === "zh" ? "en" : "zh";
    localStorage.setItem("fg-lang", FG.lang);
    FG.applyLanguage();
  };

  // ---- messages: each area of the page has its own box, next to the controls that cause them ----
  // The boxes stay in the page, empty, so screen readers announce what appears in them (role=alert).
  const messages = {}; // area -> {key, vars, notice}

  function render(area, said) {
    const box = $(area + "-error");
    box.textContent = said.key ? FG.t(said.key, said.vars) : said.text;
    box.classList.toggle("notice", !!said.notice);
  }

  FG.showError = function (area, key, vars) {
    messages[area] = key ? { key: key, vars: vars } : null;
    if (key) render(area, messages[area]);
    else $(area + "-error").textContent = "";
  };

  FG.showNotice = function (area, key, vars) {
    messages[area] = { key: key, vars: vars, notice: true };
    render(area, messages[area]);
  };

  FG.clearErrors = function () {
    for (const area of Object.keys(messages)) FG.showError(area, null);
  };

  // What to say about a refused request: [key, vars] for showError.
  FG.failure = async function (response) {
    let detail = "";
    try { detail = (await response.json()).error || ""; } catch (e) { /* not JSON */ }
    const key = { 400: "e400", 404: "e404", 409: "e409", 413: "e413", 415: "e415", 507: "e507" }[response.status] || "eOther";
    return [key, { status: response.status, detail: detail }];
  };

  // ---- the access token ----
  // Off this machine the API asks for an access token. The page sends it as a header on every
  // request, and keeps it in a cookie for what the browser fetches by itself (<img>, the download).
  const tokenRequired = document.body.dataset.token === "required";
  const cookieName = "faceguard-token-" + (location.port || (location.protocol === "https:" ? "443" : "80"));
  let token = null;

  function setToken(value) {
    token = value;
    const cookie = cookieName + "=" + (value ? encodeURIComponent(value) : "") + "; path=/api/; SameSite=Strict";
    document.cookie = value ? cookie : cookie + "; max-age=0";
    if (value) sessionStorage.setItem("fg-token", value);
    else sessionStorage.removeItem("fg-token");
  }

  function withToken(headers) {
    return token ? Object.assign({}, headers, { Authorization: "Bearer " + token }) : headers;
  }

  // Every request to the API carries the token, if the server asks for one.
  FG.api = function (url, init) {
    const options = Object.assign({ cache: "no-store" }, init);
    options.headers = withToken(options.headers);
    return fetch(url, options);
  };

  FG.json = function (url, method, body) {
    return FG.api(url, { method: method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  };

  // An upload whose progress in bytes can be shown (fetch cannot report it). Resolves to a
  // fetch-like answer; rejects on a network error or abort (error.aborted tells which).
  FG.upload = function (url, form, onProgress) {
    const xhr = new XMLHttpRequest();
    const done = new Promise((resolve, reject) => {
      xhr.open("POST", url);
      for (const [name, value] of Object.entries(withToken({}))) xhr.setRequestHeader(name, value);
      xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) onProgress(e.loaded, e.total); });
      xhr.addEventListener("load", () => resolve({
        status: xhr.status,
        ok: xhr.status >= 200 && xhr.status < 300,
        json: async () => JSON.parse(xhr.responseText),
      }));
      xhr.addEventListener("error", () => reject(new Error("network")));
      xhr.addEventListener("abort", () => reject(Object.assign(new Error("aborted"), { aborted: true })));
      xhr.send(form);
    });
    return { done: done, abort: () => xhr.abort() };
  };

  const SECTIONS = ["pick", "recent", "job"];
  let resumeAfterToken = () => {};
  FG.onResume = (callback) => { resumeAfterToken = callback; };

  // Ask for the token: what the page showed stays as it was behind the form.
  function askToken(key, vars) {
    for (const id of SECTIONS) $(id).hidden = true;
    FG.editorClose && FG.editorClose();
    $("access").hidden = false;
    FG.showError("access", key, vars);
    $("token-input").focus();
  }

  // True (and the token asked for) if the server refused the request for want of it.
  FG.refused = function (response) {
    if (response.status !== 401) return false;
    setToken(null);
    askToken("tokenExpired");
    return true;
  };

  // Check a token with the server: null if it is the one, else the error to show ([key, vars]).
  async function tryToken(value) {
    let response;
    try {
      response = await fetch("/api/access", { headers: { Authorization: "Bearer " + value }, cache: "no-store" });
    } catch (e) {
      return ["offline"];
    }
    if (response.status === 204) { setToken(value); return null; }
    return response.status === 401 ? ["tokenWrong"] : await FG.failure(response);
  }

  function resume() {
    $("access").hidden = true;
    FG.showError("access", null);
    resumeAfterToken();
  }

  // A token in the address (#token=..., which never reaches the server's logs) or from earlier in
  // this tab; then the page goes on. Without a token to ask for, it goes on at once.
  FG.unlock = async function () {
    if (!tokenRequired) { resume(); return; }
    const match = /^#token=(.+)$/.exec(location.hash);
    if (match) history.replaceState(null, "", location.pathname + location.search);
    const given = match ? decodeURIComponent(match[1]) : sessionStorage.getItem("fg-token");
    const problem = given ? await tryToken(given) : [null];
    if (!problem) resume();
    else askToken(...(match || problem[0] !== "tokenWrong" ? problem : ["tokenExpired"]));
  };

  async function submitToken(e) {
    e.preventDefault();
    const value = $("token-input").value.trim();
    if (!value) return;
    $("token-submit").disabled = true;
    const problem = await tryToken(value);
    $("token-submit").disabled = false;
    if (problem) { FG.showError("access", ...problem); return; }
    $("token-input").value = "";
    resume();
  }

  $("access-form").addEventListener("submit", submitToken);
  $("lang").addEventListener("click", FG.switchLanguage);
})();
