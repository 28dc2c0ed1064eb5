// musivid studio: one page, no build step. It polls /api/state (the job and the project's
// version) and reloads /api/project when either changes, so several tabs, and the command line
// used in between, all see the same project.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { project: null, version: null, job: null, selected: null, peaks: null, peaksFor: null, drag: null,
                timer: null, stopping: null };

// The token came in the URL; the server keeps it in a cookie now: take it out of the address bar.
if (new URLSearchParams(location.search).has("token")) history.replaceState(null, "", location.pathname);

async function api(method, path, body) {
  const opts = { method, cache: "no-store", headers: {} };
  if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  const r = await fetch(path, opts);
  let data = null;
  try { data = await r.json(); } catch (e) { /* not JSON */ }
  if (!r.ok) {
    const detail = data && (data.error || (data.detail && data.detail.map?.((d) => d.msg).join("; ")));
    throw new Error(detail || `${r.status} ${r.statusText}`);
  }
  return data;
}

function say(text, kind) { const m = $("message"); m.textContent = text || ""; m.className = kind || ""; }
async function act(fn) { try { say(""); await fn(); } catch (e) { say(e.message, "error"); } }
const fmt = (t) => (t == null ? "–" : `${Math.floor(t / 60)}:${(t % 60).toFixed(2).padStart(5, "0")}`);
function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "dataset") Object.assign(e.dataset, v);
    else if (k in e && typeof v !== "string") e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

// ---- jobs ------------------------------------------------------------------------------------------
async function startJob(body) {
  showJob(await api("POST", "/api/jobs", body));
}

function showJob(job) {
  const prev = state.job;
  state.job = job;
  const bar = $("jobbar"), running = job && job.state === "running";
  bar.className = job ? job.state : "idle";
  bar.dataset.job = job ? String(job.id) : "";  // which job the bar shows (tests wait for a new one)
  document.body.classList.toggle("busy", !!running);
  $("cancel").hidden = !running;
  $("cancel").disabled = !!(job && job.cancel_requested);
  for (const b of document.querySelectorAll(".needs-idle")) b.disabled = !!running;
  if (!job) return;
  const what = running ? (job.cancel_requested ? "cancelling: " : "") + job.label
                       : `${job.label}: ${job.state}`;
  $("job-label").textContent = what;
  const frac = job.total ? job.done / job.total : 0;
  $("job-progress").value = running ? frac : 1;
  $("job-count").textContent = running && job.stage
    ? `${job.stage} ${job.done}/${job.total} · ${job.elapsed.toFixed(0)} s` : `${job.elapsed.toFixed(1)} s`;
  $("job-message").textContent = job.message || "";
  $("job-log").textContent = (job.log || []).join("\n");
  const ended = prev && prev.id === job.id && prev.state === "running" && job.state !== "running";
  if (ended && job.state === "done" && job.kind === "preview" && job.result) showPreview(job.result.url);
}

async function poll() {
  if (state.stopping) return;
  try {
    const s = await api("GET", "/api/state");
    const was = state.job;
    showJob(s.job);
    const ended = s.job && was && was.id === s.job.id && was.state === "running" && s.job.state !== "running";
    if (s.stopping) { state.stopping = s.stopping; clearInterval(state.timer); }  // the last answer: show it
    if (s.version !== state.version || ended || s.stopping) { state.version = s.version; await load(); }
    if (s.stopping) say(s.stopping, "error");
  } catch (e) { say(`lost contact with the studio (${e.message})`, "error"); }
}

// ---- the project -----------------------------------------------------------------------------------
async function load() {
  state.project = await api("GET", "/api/project");
  if (state.project.version !== undefined) state.version = state.project.version;
  draw();
}

function draw() {
  const p = state.project;
  $("name").textContent = p.name;
  document.title = `musivid studio: ${p.name}`;
  const note = $("untrained");
  note.hidden = !p.untrained;
  note.textContent = p.untrained_note || "";
  const job = state.job, making = job && job.kind === "make";
  const failed = making && job.state === "failed" ? `The project could not be made: ${job.message}` : null;
  if (!p.exists) {
    const why = p.error || failed ||
      (making && job.state === "cancelled" ? "Making the project was cancelled: it has no lines yet." : null);
    $("facts").textContent = why || "the project is being made…";
    $("lines").replaceChildren(el("p", why ? { id: "failure", class: "empty failure" } : { class: "empty" },
                                  why || "No lines yet: the project is being made."));
    showJob(job);
    return;
  }
  const s = p.settings;
  $("facts").textContent = `${p.lines.length} lines · ${fmt(p.duration)} · ${p.tempo ?? "?"} BPM · ` +
    `${s.variants} variant(s), ${s.steps} steps · ${s.frame || s.size + "px"} ${s.fps} fps · CLIP ${s.clip}, BigGAN ${s.biggan}`;
  const style = $("style");
  if (document.activeElement !== style) style.value = s.style || "";
  $("optimize").hidden = !p.missing_lines.length;
  $("thumbs").hidden = !p.missing_thumbnails;
  const audio = $("audio");
  if (p.audio && audio.dataset.src !== p.audio.url) { audio.dataset.src = p.audio.url; audio.src = p.audio.url; }
  drawVideo(p.video);
  drawLines(p);
  drawTimeline();
  if (p.audio && state.peaksFor !== p.audio.url) loadPeaks(p.audio.url);
  showJob(state.job);
}

function drawVideo(v) {
  const video = $("video");
  video.hidden = !v;
  $("video-none").hidden = !!v;
  $("video-name").textContent = v ? v.path : "";
  if (v && video.dataset.src !== v.url) { video.dataset.src = v.url; video.src = v.url; }
}

function showPreview(url) {
  const video = $("preview");
  video.hidden = false;
  $("preview-none").hidden = true;
  video.src = url;
  video.play().catch(() => {});
}

function drawLines(p) {
  // A card whose field is being typed in is kept as it is (its value, caret and selection with it:
  // a redraw between a key and the next must not splice old and new text); it is drawn anew once
  // the field loses focus.
  const active = document.activeElement;
  const typing = active && active.tagName === "INPUT" ? active.closest(".line") : null;
  const open = new Map([...document.querySelectorAll(".line .edit:not([hidden]) input")]
    .map((i) => [i.closest(".line").dataset.line, i.value]));
  const cards = p.lines.map((li) => lineCard(li, p.lines.length, open.get(String(li.line))));
  const old = [...$("lines").querySelectorAll(":scope > .line")];
  const same = typing && old.length === cards.length && old.every((c, k) => c.dataset.line === cards[k].dataset.line);
  if (!same) { $("lines").replaceChildren(...cards); state.staleCard = null; return; }
  old.forEach((c, k) => { if (c !== typing) c.replaceWith(cards[k]); });
  typing.classList.toggle("selected", state.selected === Number(typing.dataset.line));
  state.staleCard = typing.dataset.line;
}

$("lines").addEventListener("focusout", (ev) => {
  // the card kept while its field was typed in catches up, unless focus stays within it
  const card = ev.target.closest?.(".line");
  if (!card || state.staleCard !== card.dataset.line || card.contains(ev.relatedTarget)) return;
  state.staleCard = null;
  if (state.project && state.project.exists) setTimeout(() => { if (!state.staleCard) drawLines(state.project); }, 0);
});

function lineCard(li, n, editing) {
  const next = li.line < n ? `Preview → ${li.line + 1}` : "Preview → end";
  const card = el("article", { class: "line" + (state.selected === li.line ? " selected" : ""), id: `line-${li.line}`,
                               dataset: { line: li.line } });
  const tools = el("span", { class: "tools" },
    el("label", {}, "start ", el("input", { class: "start", type: "number", step: "0.01", min: "0",
                                            value: li.start.toFixed(2), title: "Start of the line in seconds" }), " s"),
    el("button", { class: "needs-idle", dataset: { action: "retime" }, title: "Move the line to this start (nothing is optimized again)" }, "Move"),
    el("button", { dataset: { action: "play" }, title: "Play the song from this line" }, "▶ Play"),
    el("button", { class: "needs-idle", dataset: { action: "preview" }, title: "Render the glide from this keyframe to the next" }, next),
    el("input", { class: "count", type: "number", min: "1", max: "16", value: "2", title: "How many new variants" }),
    el("button", { class: "needs-idle", dataset: { action: "reroll" }, title: "Optimize new variants of this line" }, "Re-roll"),
    el("button", { dataset: { action: "edit" }, title: "Change the words (re-optimizes this line only)" }, "Edit words"),
    el("button", { dataset: { action: "edit-prompt" },
                   title: "What the image shows instead of the words (the caption keeps the words)" }, "Image prompt"));
  card.append(el("header", {}, el("span", { class: "num" }, String(li.line)), el("span", { class: "text" }, li.text), tools));
  if (li.prompt) card.append(el("p", { class: "prompt" }, `image: ${li.prompt}`));
  card.append(el("div", { class: "edit-prompt", hidden: true },
    el("input", { class: "newprompt", value: li.prompt || "", maxlength: "2000",
                  placeholder: "e.g. a volcano at night [classes: volcano] [avoid: people] [image: look.jpg:0.5]",
                  title: "[image: FILE] or [image: FILE:WEIGHT] adds a reference image " +
                         "(a relative FILE: from the folder the studio was started in)" }),
    el("button", { class: "needs-idle", dataset: { action: "save-prompt" } }, "Set and optimize"),
    el("button", { class: "needs-idle", dataset: { action: "clear-prompt" } }, "Clear"),
    el("button", { dataset: { action: "cancel-prompt" } }, "Cancel")));
  const edit = el("div", { class: "edit", hidden: editing === undefined },
    el("input", { class: "newtext", value: editing ?? li.text, maxlength: "2000" }),
    el("button", { class: "needs-idle", dataset: { action: "save-text" } }, "Re-word and optimize"),
    el("button", { dataset: { action: "cancel-edit" } }, "Cancel"));
  card.append(edit);
  const kf = li.keyframe == null ? "no keyframe yet" : `keyframe ${fmt(li.keyframe)}${li.snapped ? " (on the beat)" : ""}`;
  card.append(el("p", { class: "note" }, `${fmt(li.start)} – ${fmt(li.end)} · ${kf}` +
    (li.variants.length ? (li.picked ? ` · variant ${li.shown} picked` : ` · showing the best-scoring variant ${li.shown}`) : "")));
  const row = el("div", { class: "variants" });
  if (!li.variants.length) row.append(el("p", { class: "empty" }, "Not optimized yet."));
  for (const v of li.variants) {
    const chosen = v.variant === li.shown;
    const img = v.thumb ? el("img", { src: v.thumb, alt: `line ${li.line}, variant ${v.variant}` })
                        : el("div", { class: "noimg" }, "no thumbnail");
    const score = v.score == null ? "n/a" : v.score.toFixed(3);
    row.append(el("figure", { class: "variant needs-idle" + (chosen ? " chosen" : ""), dataset: { variant: v.variant },
                              title: chosen ? "the video shows this variant" : "click: show this variant in the video" },
      img, el("figcaption", {}, `v${v.variant} · ${score}`, chosen ? el("b", {}, " ✓ shown") : null)));
  }
  card.append(row);
  return card;
}

$("lines").addEventListener("click", (ev) => {
  const card = ev.target.closest(".line");
  if (!card) return;
  const line = Number(card.dataset.line);
  const li = state.project.lines.find((l) => l.line === line);
  const fig = ev.target.closest(".variant");
  if (fig && !fig.classList.contains("chosen")) {
    return act(async () => {
      await api("POST", "/api/pick", { line, variant: Number(fig.dataset.variant) });
      say(`line ${line}: variant ${fig.dataset.variant} picked (render to see it in the video)`);
      await load();
    });
  }
  const action = ev.target.closest("[data-action]")?.dataset.action;
  if (!action) return;
  const edit = card.querySelector(".edit");
  if (action === "play") return playFrom(li.start, line);
  if (action === "edit") { edit.hidden = false; edit.querySelector("input").focus(); return; }
  if (action === "cancel-edit") { edit.hidden = true; return; }
  const promptBox = card.querySelector(".edit-prompt");
  if (action === "edit-prompt") { promptBox.hidden = false; promptBox.querySelector("input").focus(); return; }
  if (action === "cancel-prompt") { promptBox.hidden = true; return; }
  if (action === "save-prompt" || action === "clear-prompt") {
    const text = action === "clear-prompt" ? "" : promptBox.querySelector("input").value;
    return act(async () => { await startJob({ kind: "prompt", line, text }); promptBox.hidden = true; });
  }
  if (action === "retime") {
    const start = Number(card.querySelector("input.start").value);
    return act(() => retime(line, start));
  }
  if (action === "reroll") {
    const count = Number(card.querySelector("input.count").value) || 2;
    return act(() => startJob({ kind: "variants", line, count }));
  }
  if (action === "preview") return act(() => startJob({ kind: "preview", line }));
  if (action === "save-text") {
    const text = edit.querySelector("input").value;
    return act(async () => { await startJob({ kind: "rewrite", line, text }); edit.hidden = true; });
  }
});

async function retime(line, start) {
  const r = await api("POST", "/api/retime", { line, start });
  say(`line ${line} now starts at ${fmt(r.start)}; its keyframe moved with it (nothing optimized again)`);
  await load();
}

function playFrom(t, line) {
  const audio = $("audio");
  select(line);
  audio.currentTime = t;
  audio.play().catch((e) => say(`cannot play the song here: ${e.message}`, "error"));
}

function select(line) {
  state.selected = line;
  for (const c of document.querySelectorAll(".line, .block")) c.classList.toggle("selected", Number(c.dataset.line) === line);
}

// ---- the timeline ----------------------------------------------------------------------------------
const px = (t) => (t / state.project.duration) * $("timeline").clientWidth;

function drawTimeline() {
  const p = state.project;
  if (!p || !p.exists || !p.duration || state.drag) return;  // a line being dragged keeps its element
  const canvas = $("wave"), box = $("timeline");
  const w = box.clientWidth, h = box.clientHeight, dpr = window.devicePixelRatio || 1;
  canvas.width = w * dpr; canvas.height = h * dpr;
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  g.clearRect(0, 0, w, h);
  // the waveform (decoded by the browser) or else the beat strength the project analysed
  const mid = 24, amp = 22;
  g.fillStyle = "#4a6a9a";
  if (state.peaks) {
    const n = state.peaks.length;
    for (let x = 0; x < w; x++) { const a = state.peaks[Math.floor((x / w) * n)] * amp; g.fillRect(x, mid - a, 1, 2 * a + 1); }
  } else if (p.energy.values.length) {
    const vals = p.energy.values, rate = p.energy.rate;
    for (let x = 0; x < w; x++) { const a = vals[Math.min(vals.length - 1, Math.floor((x / w) * p.duration * rate))] * amp; g.fillRect(x, mid - a, 1, 2 * a + 1); }
  }
  g.fillStyle = "rgba(255,255,255,0.35)";
  for (const b of p.beats) g.fillRect(px(b), h - 12, 1, 12);
  const blocks = $("blocks");
  blocks.replaceChildren();
  for (const li of p.lines) {
    const b = el("div", { class: "block" + (state.selected === li.line ? " selected" : ""), dataset: { line: li.line },
                          title: `${li.line}. ${li.text} (${fmt(li.start)}): drag to move its start` },
                 `${li.line} ${li.text}`);
    b.style.left = `${px(li.start)}px`;
    b.style.width = `${Math.max(4, px(li.end) - px(li.start))}px`;
    blocks.append(b);
    if (li.keyframe != null) {
      const k = el("div", { class: "kf" + (li.snapped ? "" : " off"), title: `keyframe of line ${li.line}` });
      k.style.left = `${px(li.keyframe)}px`;
      blocks.append(k);
    }
  }
  movePlayhead();
}

async function loadPeaks(url) {
  state.peaksFor = url;
  try {
    const buf = await (await fetch(url)).arrayBuffer();
    const audio = await new OfflineAudioContext(1, 1, 44100).decodeAudioData(buf);
    const data = audio.getChannelData(0), n = 2000, step = Math.max(1, Math.floor(data.length / n));
    const peaks = new Float32Array(n);
    let top = 1e-9;
    for (let i = 0; i < n; i++) {
      let m = 0;
      for (let j = i * step; j < Math.min(data.length, (i + 1) * step); j++) m = Math.max(m, Math.abs(data[j]));
      peaks[i] = m; top = Math.max(top, m);
    }
    state.peaks = peaks.map((v) => v / top);
    drawTimeline();
  } catch (e) { /* the beat strength stays on the timeline */ }
}

function movePlayhead() {
  const p = state.project;
  if (p && p.duration) $("playhead").style.left = `${px($("audio").currentTime || 0)}px`;
}

$("audio").addEventListener("timeupdate", movePlayhead);
window.addEventListener("resize", drawTimeline);

$("timeline").addEventListener("pointerdown", (ev) => {
  const block = ev.target.closest(".block");
  if (!block) return;
  ev.preventDefault();
  block.setPointerCapture(ev.pointerId);
  state.drag = { block, line: Number(block.dataset.line), x0: ev.clientX, left0: block.offsetLeft, moved: false };
});
$("timeline").addEventListener("pointermove", (ev) => {
  const d = state.drag;
  if (!d) return;
  const dx = ev.clientX - d.x0;
  if (Math.abs(dx) > 3) { d.moved = true; d.block.classList.add("dragging"); }
  if (d.moved) d.block.style.left = `${d.left0 + dx}px`;
});
$("timeline").addEventListener("pointerup", (ev) => {
  const d = state.drag;
  state.drag = null;
  if (!d) {  // a click on the timeline itself: play from there
    const r = $("timeline").getBoundingClientRect();
    const t = ((ev.clientX - r.left) / r.width) * state.project.duration;
    $("audio").currentTime = Math.max(0, t);
    $("audio").play().catch(() => {});
    return;
  }
  d.block.classList.remove("dragging");
  const li = state.project.lines.find((l) => l.line === d.line);
  if (!d.moved) {  // a click on a line: show it
    select(d.line);
    $(`line-${d.line}`).scrollIntoView({ behavior: "smooth", block: "center" });
    return;
  }
  if (state.job && state.job.state === "running") { say("a job is running: moving a line waits for it", "error"); drawTimeline(); return; }
  const start = Math.max(0, li.start + ((ev.clientX - d.x0) / $("timeline").clientWidth) * state.project.duration);
  act(async () => { try { await retime(d.line, Math.round(start * 100) / 100); } finally { drawTimeline(); } });
});

$("timeline").addEventListener("pointercancel", () => { state.drag = null; drawTimeline(); });

// ---- buttons -----------------------------------------------------------------------------------------
$("render").classList.add("needs-idle");
$("optimize").classList.add("needs-idle");
$("thumbs").classList.add("needs-idle");
$("render").addEventListener("click", () => act(() => startJob({ kind: "render" })));
$("optimize").addEventListener("click", () => act(() => startJob({ kind: "optimize" })));
$("thumbs").addEventListener("click", () => act(() => startJob({ kind: "thumbnails" })));
$("set-style").addEventListener("click", () => act(() => startJob({ kind: "style", text: $("style").value })));
$("cancel").addEventListener("click", () => act(async () => { showJob((await api("POST", "/api/cancel")).cancelled); }));

poll();
state.timer = setInterval(poll, 500);
