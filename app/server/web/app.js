// The page of `llada serve`: chat, infill and the live denoising canvas. Model text only ever
// reaches the page through textContent or DOM nodes built here (see renderMarkdown): never as
// markup. No build step, no libraries.
"use strict";

const KEY_STORE = "llada.apiKey";
const CHATS_STORE = "llada.conversations";
const SETTINGS = ["max_tokens", "steps", "block_length", "mode", "threshold", "temperature"];
const $ = (id) => document.getElementById(id);
// A question's picture (LLaDA-V): the formats the server reads, and its size limit.
const PICTURE_TYPES = /^image\/(png|jpeg|gif|webp|bmp|tiff)$/;
const MAX_PICTURE_BYTES = 20_000_000;
const NO_VISION = "This model has no vision, so it cannot look at a picture; serve LLaDA-V to ask about one.";

const state = {
  info: null,
  conversations: loadConversations(),
  current: null,
  controller: null,
  lastFrame: null,
  frameStarted: 0,
  picture: null,  // { name, url (a data: URL) } for the next question
};

// --- The API, with the key asked once when it answers 401 ---------------------------------
function loadConversations() {
  try { return JSON.parse(sessionStorage.getItem(CHATS_STORE) || "[]"); } catch { return []; }
}
// Pictures can outgrow the tab's storage: then the text is kept there and the pictures stay on
// the page until it is reloaded (said once, in one sentence).
function saveConversations() {
  try {
    sessionStorage.setItem(CHATS_STORE, JSON.stringify(state.conversations));
  } catch {
    const light = state.conversations.map((c) => Object.assign({}, c, {
      messages: c.messages.map((m) => (m.picture ? Object.assign({}, m, { picture: { name: m.picture.name } }) : m)),
    }));
    try { sessionStorage.setItem(CHATS_STORE, JSON.stringify(light)); } catch { /* nothing left to drop */ }
    showError("chat-error", "The pictures are too large for this tab's storage: they stay on the page until it is reloaded, and the text is kept.");
  }
}

async function api(path, options = {}) {
  for (;;) {
    const headers = Object.assign({}, options.headers || {});
    const key = sessionStorage.getItem(KEY_STORE);
    if (key) headers.Authorization = "Bearer " + key;
    if (options.body) headers["Content-Type"] = "application/json";
    const response = await fetch(path, Object.assign({}, options, { headers }));
    if (response.status !== 401) return response;
    if (!(await askKey(key ? "That key was refused. " : ""))) throw new Error("This server needs its API key.");
  }
}

function askKey(note) {
  const dialog = $("key-dialog");
  const input = $("key-input");
  input.value = "";
  dialog.querySelector("p").firstChild.textContent = note + "This server needs its API key (the one ";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      const ok = dialog.returnValue === "ok" && input.value.trim() !== "";
      if (ok) sessionStorage.setItem(KEY_STORE, input.value.trim());
      resolve(ok);
    }, { once: true });
    dialog.showModal();
    input.focus();
  });
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) return body.error.message;
  } catch { /* not JSON */ }
  return `The server answered ${response.status}.`;
}

// Server-sent events from a fetch body: calls onEvent(eventName, parsedData) per event.
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      const text = data.join("\n");
      if (text === "[DONE]") return;
      if (text) onEvent(name, JSON.parse(text));
    }
  }
}

// --- Info and settings ----------------------------------------------------------------------
async function loadInfo() {
  try {
    const response = await api("/v1/llada/info");
    if (!response.ok) throw new Error(await errorText(response));
    state.info = await response.json();
    const info = state.info;
    $("model-line").textContent =
      `${info.model} · ${info.backend || "backend?"} · ${info.dtype || "dtype?"}`;
    applyDefaults();
    updatePictureButton();
  } catch (error) {
    $("model-line").textContent = "Cannot reach the server: " + error.message;
  }
}

function applyDefaults() {
  const d = (state.info && state.info.defaults) || {};
  $("set-max_tokens").value = d.gen_length ?? "";
  $("set-steps").value = "";
  $("set-block_length").value = d.block_length ?? "";
  $("set-mode").value = d.mode || "fast";
  $("set-threshold").value = d.threshold ?? "";
  $("set-temperature").value = d.temperature ?? 0;
}

// The settings a request carries; the server checks them with the same code as the window.
function settings() {
  const out = {};
  for (const name of SETTINGS) {
    const raw = $("set-" + name).value.trim();
    if (name === "mode") { out.mode = raw; continue; }
    if (name === "threshold") { out.threshold = raw === "" ? null : Number(raw); continue; }
    if (raw === "") continue;
    out[name] = Number(raw);
  }
  return out;
}

// --- A picture for the next question (LLaDA-V): button, paste or drop -------------------------
function visionOn() { return Boolean(state.info && state.info.vision); }

function updatePictureButton() {
  const button = $("picture-button");
  button.disabled = !visionOn();
  button.title = visionOn() ? "Ask about a picture (or paste one, or drop it on the composer)" : NO_VISION;
}

function attachFile(file) {
  showError("chat-error", "");
  if (!file) return;
  const name = file.name || "the pasted picture";
  if (!visionOn()) { showError("chat-error", NO_VISION); return; }
  if (!PICTURE_TYPES.test(file.type)) {
    showError("chat-error", `${name} is not a picture the model can read (PNG, JPEG, GIF, WebP, BMP or TIFF).`);
    return;
  }
  if (file.size > MAX_PICTURE_BYTES) {
    showError("chat-error", `${name} is ${Math.round(file.size / 1e6)} MB; pictures up to ${MAX_PICTURE_BYTES / 1e6} MB can be attached.`);
    return;
  }
  const reader = new FileReader();
  reader.onload = () => { state.picture = { name, url: reader.result }; showAttachment(); };
  reader.onerror = () => showError("chat-error", `${name} cannot be read.`);
  reader.readAsDataURL(file);
}

function showAttachment() {
  const picture = state.picture;
  $("attachment").hidden = !picture;
  const thumb = $("attachment-thumb");
  if (picture) { thumb.src = picture.url; thumb.alt = picture.name; $("attachment-name").textContent = picture.name; }
  else { thumb.removeAttribute("src"); $("attachment-name").textContent = ""; }
}

// The messages as the API takes them: the last question's picture goes with it as an
// image_url part; an earlier question's stays on the page only (the server reads one picture,
// with the question being answered, as the window does).
function requestMessages(messages) {
  const last = messages.map((m) => m.role).lastIndexOf("user");
  return messages.map((m, i) => ({
    role: m.role,
    content: i === last && m.picture && m.picture.url
      ? [{ type: "image_url", image_url: { url: m.picture.url } }, { type: "text", text: m.content }]
      : m.content,
  }));
}

// --- Markdown: a small subset, built as DOM nodes (model text is never parsed as HTML) ------
function renderMarkdown(text) {
  const root = document.createDocumentFragment();
  const lines = text.split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (/^```/.test(line)) {
      const code = [];
      for (i++; i < lines.length && !/^```/.test(lines[i]); i++) code.push(lines[i]);
      i++;
      const pre = document.createElement("pre");
      const el = document.createElement("code");
      el.textContent = code.join("\n");
      pre.append(el);
      root.append(pre);
    } else if (/^\s*([-*+]|\d+[.)])\s+/.test(line)) {
      const ordered = /^\s*\d/.test(line);
      const list = document.createElement(ordered ? "ol" : "ul");
      while (i < lines.length && /^\s*([-*+]|\d+[.)])\s+/.test(lines[i])) {
        const item = document.createElement("li");
        item.append(inline(lines[i].replace(/^\s*([-*+]|\d+[.)])\s+/, "")));
        list.append(item);
        i++;
      }
      root.append(list);
    } else if (line.trim() === "") {
      i++;
    } else {
      const para = [];
      while (i < lines.length && lines[i].trim() !== "" && !/^```/.test(lines[i])
             && !/^\s*([-*+]|\d+[.)])\s+/.test(lines[i])) para.push(lines[i++]);
      const p = document.createElement("p");
      para.forEach((part, k) => { if (k) p.append(document.createElement("br")); p.append(inline(part)); });
      root.append(p);
    }
  }
  return root;
}

// Inline code, **bold**, *italic*: text nodes and elements only.
function inline(text) {
  const out = document.createDocumentFragment();
  const pattern = /(`[^`]+`|\*\*[^*]+\*\*|\*[^*\s][^*]*\*|_[^_\s][^_]*_)/g;
  let at = 0;
  for (const match of text.matchAll(pattern)) {
    if (match.index > at) out.append(document.createTextNode(text.slice(at, match.index)));
    const token = match[0];
    let el;
    if (token.startsWith("`")) { el = document.createElement("code"); el.textContent = token.slice(1, -1); }
    else if (token.startsWith("**")) { el = document.createElement("strong"); el.textContent = token.slice(2, -2); }
    else { el = document.createElement("em"); el.textContent = token.slice(1, -1); }
    out.append(el);
    at = match.index + token.length;
  }
  if (at < text.length) out.append(document.createTextNode(text.slice(at)));
  return out;
}

// --- The canvas (the window's colours: app/ui/canvas.py) ------------------------------------
const MASKED = "#444444", NEW = "#FFD24D", EARLIER = "#6699CC", EDITED = "#8E44AD";
const LOW = "#FF6666", MID = "#FFAA33", HIGH = "#66CC66";
const REVEAL_LIGHT = [0xDC, 0xEB, 0xFA], REVEAL_DARK = [0x08, 0x30, 0x6B];

function textOn(hex) {
  const [r, g, b] = [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16) / 255);
  return 0.299 * r + 0.587 * g + 0.114 * b > 0.55 ? "#111111" : "#ffffff";
}
function confidenceColour(c) { return c < 0.3 ? LOW : c < 0.7 ? MID : HIGH; }
function revealColour(step, last) {
  const t = last <= 0 ? 0 : Math.min(1, Math.max(0, step / last));
  return "#" + REVEAL_LIGHT.map((v, k) => Math.round(v + (REVEAL_DARK[k] - v) * t)
    .toString(16).padStart(2, "0")).join("");
}

function colours(frame, i, mode) {
  const at = frame.committed_at[i];
  if (at < 0) return [MASKED, "#bbbbbb"];
  // LLaDA2.1 rewrote this token at this pass: the model correcting itself
  if (frame.edited_at && frame.edited_at[i] === frame.step && mode !== "reveal") return [EDITED, "#ffffff"];
  if (mode === "state") return at === frame.step ? [NEW, textOn(NEW)] : [null, null];
  if (mode === "confidence") {
    const bg = at === frame.step ? confidenceColour(frame.confidence[i]) : EARLIER;
    return [bg, textOn(bg)];
  }
  const bg = revealColour(at, Math.max(1, (frame.total_steps || frame.step + 1) - 1));
  return [bg, textOn(bg)];
}

function drawFrame(frame) {
  state.lastFrame = frame;
  const canvas = $("canvas");
  const mode = $("colour-mode").value;
  const holes = new Set();
  for (const [start, length] of frame.holes || []) for (let k = 0; k < length; k++) holes.add(start + k);
  const cells = [];
  const block = frame.block_length || frame.pieces.length;
  frame.pieces.forEach((piece, i) => {
    const cell = document.createElement("span");
    cell.className = "cell";
    if (frame.committed_at[i] < 0) cell.classList.add("masked");
    if (i > 0 && i % block === 0) cell.classList.add("block-start");
    if (holes.has(i)) cell.classList.add("hole");
    if (frame.edited_at && frame.edited_at[i] >= 0 && frame.edited_at[i] !== frame.step) cell.classList.add("edited");
    cell.textContent = piece === "" ? "\u00a0" : piece;
    const [bg, fg] = colours(frame, i, mode);
    if (bg) { cell.style.backgroundColor = bg; cell.style.color = fg; }
    cells.push(cell);
  });
  canvas.replaceChildren(...cells);
  $("legend-edited").hidden = !frame.edited_at;
  const masked = frame.committed_at.filter((c) => c < 0).length;
  canvas.setAttribute("aria-label", `denoising canvas, ${masked} of ${frame.pieces.length} positions masked`);
  const seconds = (performance.now() - state.frameStarted) / 1000;
  const unmasked = frame.pieces.length - masked;
  const rate = seconds > 0 ? (unmasked / seconds).toFixed(1) : "–";
  // LLaDA2.1's editing decoder may pass over full blocks beyond the steps set
  const total = !frame.total_steps ? "" : frame.step < frame.total_steps ? ` of ${frame.total_steps}`
    : ` (editing, past the ${frame.total_steps} set)`;
  $("progress").textContent = `pass ${frame.step + 1}${total} · block ${frame.block + 1} · ` +
    `${unmasked}/${frame.pieces.length} tokens · ${rate} tokens/s` + (frame.done ? " · done" : "");
}

// --- Conversations ----------------------------------------------------------------------------
function newConversation() {
  const conversation = { id: String(Date.now()) + Math.random().toString(16).slice(2, 6), title: "New chat", messages: [] };
  state.conversations.unshift(conversation);
  state.current = conversation;
  saveConversations();
  renderAll();
  $("prompt").focus();
}

function renderConversations() {
  const list = $("conversations");
  list.replaceChildren(...state.conversations.map((conversation) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = conversation.title;
    button.title = conversation.title;
    button.setAttribute("aria-current", String(conversation === state.current));
    button.addEventListener("click", () => { if (!state.controller) { state.current = conversation; renderAll(); } });
    item.append(button);
    return item;
  }));
}

function renderMessages() {
  const list = $("messages");
  const messages = state.current ? state.current.messages : [];
  list.replaceChildren(...messages.map((message, index) => messageNode(message, index)));
}

function messageNode(message, index) {
  const item = document.createElement("li");
  item.className = "message " + message.role;
  if (message.role === "user") {
    if (message.picture) {
      if (message.picture.url) {
        const thumb = document.createElement("img");
        thumb.className = "thumb";
        thumb.alt = message.picture.name;
        thumb.src = message.picture.url;
        item.append(thumb);
      } else {
        const note = document.createElement("div");
        note.className = "meta";
        note.textContent = `picture: ${message.picture.name} (not kept after a reload: too large for this tab)`;
        item.append(note);
      }
    }
    item.append(document.createTextNode(message.content));
    return item;
  }
  const body = document.createElement("div");
  body.className = "body";
  body.append(renderMarkdown(message.content));
  item.append(body);
  if (message.note) {
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = message.note;
    item.append(meta);
  }
  if (!message.pending) {
    const actions = document.createElement("div");
    actions.className = "actions";
    const retry = document.createElement("button");
    retry.type = "button"; retry.textContent = "Retry"; retry.className = "retry";
    retry.addEventListener("click", () => retryAt(index));
    const copy = document.createElement("button");
    copy.type = "button"; copy.textContent = "Copy"; copy.className = "copy";
    copy.addEventListener("click", () => copyText(message.content, copy));
    actions.append(retry, copy);
    item.append(actions);
  }
  return item;
}

function renderAll() { renderConversations(); renderMessages(); }

async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = document.createElement("textarea");
    area.value = text; document.body.append(area); area.select();
    document.execCommand("copy"); area.remove();
  }
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = "Copy"; }, 1200);
}

// --- Chat -------------------------------------------------------------------------------------
function showError(id, message) {
  const el = $(id);
  el.textContent = message || "";
  el.hidden = !message;
}

function setBusy(busy) {
  $("send").disabled = busy; $("infill-send").disabled = busy;
  $("stop").disabled = !busy; $("infill-stop").disabled = !busy;
}

async function send() {
  const text = $("prompt").value;
  if (!text.trim() || state.controller) return;
  if (!state.current) newConversation();
  const conversation = state.current;
  const question = { role: "user", content: text };
  if (state.picture) question.picture = state.picture;
  conversation.messages.push(question);
  if (conversation.title === "New chat") conversation.title = text.trim().slice(0, 40);
  $("prompt").value = "";
  state.picture = null;
  showAttachment();
  await answer(conversation, text);
}

function retryAt(index) {
  if (state.controller) return;
  const conversation = state.current;
  conversation.messages.splice(index);
  answer(conversation);
}

// `typed`: the composer's text, given back to it (with the message taken off) when the server
// refuses the request, so a setting out of range loses nothing.
async function answer(conversation, typed = null) {
  showError("chat-error", "");
  const history = requestMessages(conversation.messages);
  const reply = { role: "assistant", content: "", pending: true };
  conversation.messages.push(reply);
  renderAll();
  const controller = new AbortController();
  state.controller = controller;
  setBusy(true);
  state.frameStarted = performance.now();
  $("progress").textContent = "waiting for the model…";
  let finish = null;
  let refused = false;
  try {
    const response = await api("/v1/chat/completions", {
      method: "POST", signal: controller.signal,
      body: JSON.stringify(Object.assign({ messages: history, stream: true, llada_frames: true }, settings())),
    });
    if (!response.ok) { refused = true; throw new Error(await errorText(response)); }
    await readEvents(response, (name, data) => {
      if (name === "llada.frame") { drawFrame(data.llada_frame); return; }
      if (data.error) throw new Error(data.error.message);
      const choice = data.choices && data.choices[0];
      if (!choice) return;
      if (choice.delta && choice.delta.content) { reply.content += choice.delta.content; renderMessages(); }
      if (choice.finish_reason) finish = choice.finish_reason;
    });
    reply.note = finish === "length" ? "stopped at the answer length" : "";
  } catch (error) {
    if (error.name === "AbortError") reply.note = "stopped";
    else { reply.note = "failed"; showError("chat-error", error.message); }
    if (refused) {
      conversation.messages.pop();
      if (typed !== null) {
        const question = conversation.messages.pop();  // back in the composer, picture and all
        $("prompt").value = typed;
        if (question && question.picture && question.picture.url) { state.picture = question.picture; showAttachment(); }
      }
      $("progress").textContent = "idle";
    }
  } finally {
    reply.pending = false;
    state.controller = null;
    setBusy(false);
    saveConversations();
    renderAll();
    $("prompt").focus();
  }
}

function stop() {
  if (state.controller) state.controller.abort();
}

// --- Infill -----------------------------------------------------------------------------------
async function infill() {
  if (state.controller) return;
  showError("infill-error", "");
  const controller = new AbortController();
  state.controller = controller;
  setBusy(true);
  state.frameStarted = performance.now();
  $("infill-result").replaceChildren();
  const chosen = settings();
  const body = { text: $("infill-text").value, stream: true, mode: chosen.mode, threshold: chosen.threshold };
  if (chosen.temperature !== undefined) body.temperature = chosen.temperature;
  if (chosen.steps !== undefined) body.steps = chosen.steps;
  try {
    const response = await api("/v1/llada/infill", {
      method: "POST", signal: controller.signal, body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(await errorText(response));
    await readEvents(response, (name, data) => {
      if (name === "llada.frame") { drawFrame(data.llada_frame); showInfill(data.llada_frame); return; }
      if (data.error) throw new Error(data.error.message);
    });
  } catch (error) {
    if (error.name !== "AbortError") showError("infill-error", error.message);
  } finally {
    state.controller = null;
    setBusy(false);
  }
}

// The text with its holes filled in place, the holes marked.
function showInfill(frame) {
  const holes = new Set();
  for (const [start, length] of frame.holes || []) for (let k = 0; k < length; k++) holes.add(start + k);
  const out = $("infill-result");
  const nodes = [];
  let mark = null;
  frame.pieces.forEach((piece, i) => {
    if (holes.has(i)) {
      if (!mark) { mark = document.createElement("mark"); nodes.push(mark); }
      mark.append(document.createTextNode(piece));
    } else {
      mark = null;
      nodes.push(document.createTextNode(piece));
    }
  });
  out.replaceChildren(...nodes);
}

// --- Wiring -----------------------------------------------------------------------------------
function showPage(name) {
  $("chat-page").hidden = name !== "chat";
  $("infill-page").hidden = name !== "infill";
  $("tab-chat").setAttribute("aria-pressed", String(name === "chat"));
  $("tab-infill").setAttribute("aria-pressed", String(name === "infill"));
}

document.addEventListener("DOMContentLoaded", () => {
  $("composer").addEventListener("submit", (event) => { event.preventDefault(); send(); });
  $("prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); send(); }
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && state.controller && !$("key-dialog").open) stop();
  });
  $("stop").addEventListener("click", stop);
  $("infill-stop").addEventListener("click", stop);
  $("infill-form").addEventListener("submit", (event) => { event.preventDefault(); infill(); });
  $("new-chat").addEventListener("click", () => { if (!state.controller) newConversation(); });
  $("settings-reset").addEventListener("click", applyDefaults);
  $("colour-mode").addEventListener("change", () => { if (state.lastFrame) drawFrame(state.lastFrame); });
  $("picture-button").addEventListener("click", () => $("picture-input").click());
  $("picture-input").addEventListener("change", (event) => {
    attachFile(event.target.files[0]);
    event.target.value = "";
  });
  $("attachment-remove").addEventListener("click", () => { state.picture = null; showAttachment(); });
  $("prompt").addEventListener("paste", (event) => {
    const item = [...(event.clipboardData ? event.clipboardData.items : [])]
      .find((entry) => entry.kind === "file" && entry.type.startsWith("image/"));
    if (item) { event.preventDefault(); attachFile(item.getAsFile()); }
  });
  const composer = $("composer");
  composer.addEventListener("dragover", (event) => {
    if ([...event.dataTransfer.types].includes("Files")) { event.preventDefault(); composer.classList.add("dropping"); }
  });
  composer.addEventListener("dragleave", () => composer.classList.remove("dropping"));
  composer.addEventListener("drop", (event) => {
    composer.classList.remove("dropping");
    if (event.dataTransfer.files.length) { event.preventDefault(); attachFile(event.dataTransfer.files[0]); }
  });
  updatePictureButton();
  $("tab-chat").addEventListener("click", () => showPage("chat"));
  $("tab-infill").addEventListener("click", () => showPage("infill"));
  state.current = state.conversations[0] || null;
  renderAll();
  loadInfo();
  $("prompt").focus();
});
