// encore's web page: upload a song, show its predictions, send feedback.
"use strict";
const $ = (id) => document.getElementById(id);
const listener = localStorage.getItem("encore-listener") || `web-${crypto.randomUUID()}`;
localStorage.setItem("encore-listener", listener);
let writes = "disabled";
let trackId = null;

function authHeaders() {
  const token = $("token").value.trim();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

function canWrite() {
  return writes === "dev" || (writes === "token" && $("token").value.trim() !== "");
}

async function errorText(response) {
  try { const body = await response.json(); return body.error ? body.error.message : response.statusText; }
  catch { return response.statusText; }
}

async function loadModel() {
  const response = await fetch("/v1/models");
  const info = await response.json();
  const model = info.models[0];
  writes = info.writes;
  const targets = model.label_names.length
    ? `${model.label_names.length} classes`
    : `scores: ${model.regression_names.join(", ") || "none"}`;  // a model of the listeners' scores alone
  $("model").textContent = `${model.run} (${model.backend}) · ${targets}`;
  $("token-box").hidden = writes !== "token";
}

function show(result) {
  $("result").hidden = false;
  $("song-name").textContent = result.name;
  $("label").textContent = result.label || "";
  $("duration").textContent = `${result.duration.toFixed(1)} s`;
  const novelty = result.novelty;
  $("novelty").hidden = !(novelty && novelty.novel);
  if (novelty && novelty.novel) {
    $("novelty").textContent = "Unlike the songs this model was trained on: take its answer as a guess " +
      `(further from them than ${(100 * novelty.score).toFixed(0)} % of held-out songs).`;
  }
  const bars = $("bars");
  bars.replaceChildren();
  for (const [name, p] of Object.entries(result.probs || {}).sort((a, b) => b[1] - a[1])) {
    const row = document.createElement("div");
    row.className = "bar";
    row.dataset.label = name;
    row.innerHTML = `<span></span><div class="track"><div class="fill"></div></div><span></span>`;
    row.children[0].textContent = name;
    row.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    row.children[2].textContent = `${(100 * p).toFixed(1)} %`;
    bars.append(row);
  }
  const tags = $("tags");
  tags.replaceChildren();
  for (const [name, p] of Object.entries(result.tags || {})) {
    const item = document.createElement("li");
    item.textContent = `${name} ${(100 * p).toFixed(0)} %`;
    tags.append(item);
  }
  const scores = result.scores || {};
  $("appeal").textContent = Object.entries(scores).map(([name, value]) => {
    const interval = (result.intervals || {})[name];
    return interval ? `${name}: ${value.toFixed(3)} [${interval[0].toFixed(3)}, ${interval[1].toFixed(3)}]` : `${name}: ${value.toFixed(3)}`;
  }).join(" · ");
  const explanation = result.explanation;
  $("figure").hidden = !explanation;
  if (explanation) {
    $("spectrogram").src = explanation.image;
    $("caption").textContent = `What drove "${explanation.target}" (${explanation.method})`;
  }
}

// Post an upload with a ticket and, while it is pending, show its place in the server's queue.
async function postQueued(form, headers, what) {
  const ticket = crypto.randomUUID();
  const say = (text) => { $("status").textContent = text; $("status").className = ""; };
  say(`sending ${what}…`);
  let pending = true;
  const poll = async () => {
    while (pending) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      if (!pending) break;
      try {
        const place = await (await fetch(`/v1/queue/${ticket}`)).json();
        if (!pending) break;
        if (place.state === "waiting") {
          const ahead = place.ahead === 0 ? "next in line" : `${place.ahead} ahead in the queue`;
          say(`waiting for a free worker: ${what} is ${ahead} (about ${Math.ceil(place.estimated_seconds)} s)…`);
        } else if (place.state === "running") {
          say(`${what}: working…`);
        }
      } catch { /* the answer will tell */ }
    }
  };
  poll();
  try {
    return await fetch("/v1/predict", { method: "POST", body: form, headers: { ...headers, "X-Request-ID": ticket } });
  } finally {
    pending = false;
  }
}

async function upload(file) {
  const form = new FormData();
  form.append("file", file);
  form.append("store", canWrite() ? "true" : "false");
  const response = await postQueued(form, authHeaders(), `predicting ${file.name}`);
  if (!response.ok) {
    $("status").textContent = await errorText(response);
    $("status").className = "error";
    return;
  }
  const result = await response.json();
  trackId = result.track_id;
  $("status").textContent = result.stored ? "done (stored); explaining…" : "done; explaining…";
  show(result);
  explain(file);
}

// The explanation (occlusion: many forward passes) comes in a second request, so the bars show at once.
async function explain(file) {
  const form = new FormData();
  form.append("file", file);
  form.append("explain", "true");
  const response = await postQueued(form, {}, `explaining ${file.name}`);
  if (!response.ok) { $("status").textContent = `no explanation: ${await errorText(response)}`; return; }
  const result = await response.json();
  $("status").textContent = "done";
  show({ ...result, explanation: result.explanation });
}

async function sendFeedback(kind, value) {
  if (!trackId) return;
  const event = { track_id: trackId, kind, listener_id: listener };
  if (value !== undefined) event.value = value;
  const response = await fetch("/v1/feedback", {
    method: "POST",
    headers: { "Content-Type": "application/json", "Idempotency-Key": crypto.randomUUID(), ...authHeaders() },
    body: JSON.stringify({ events: [event] }),
  });
  const status = $("feedback-status");
  status.className = response.ok ? "" : "error";
  status.textContent = response.ok ? `thanks: ${kind} stored` : await errorText(response);
}

const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files.length) upload(e.dataTransfer.files[0]);
});
$("file").addEventListener("change", (e) => { if (e.target.files.length) upload(e.target.files[0]); });
$("like").addEventListener("click", () => sendFeedback("like"));
$("dislike").addEventListener("click", () => sendFeedback("dislike"));
$("tag").addEventListener("click", () => { const text = $("tag-text").value.trim(); if (text) sendFeedback("tag", text); });
loadModel();
