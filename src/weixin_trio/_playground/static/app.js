// weixin-trio playground: plain JS, no build step. State comes from /api/events (SSE).
"use strict";

const state = {
  users: new Map(),     // user id -> name
  groups: new Map(),    // group id -> {name, members}
  chats: new Map(),     // chat id -> [items]
  unread: new Map(),    // chat id -> count
  windows: new Map(),   // user id -> window event
  typing: new Map(),    // user id -> bool
  lastChat: new Map(),  // user id -> chat id of their last message
  faults: [],
  active: null,
};
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

async function post(path, body, query) {
  const url = query ? `${path}?${new URLSearchParams(query)}` : path;
  const json = !(body instanceof Blob);
  const response = await fetch(url, {
    method: "POST",
    headers: { "X-Playground": "1", ...(json ? { "Content-Type": "application/json" } : {}) },
    body: json ? JSON.stringify(body) : body,
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || response.statusText);
  return answer;
}

// --- chats -------------------------------------------------------------------------------

function chatName(chat) {
  const id = chat.slice(2);
  return chat.startsWith("g:") ? (state.groups.get(id)?.name || id) : (state.users.get(id) || id);
}

function items(chat) {
  if (!state.chats.has(chat)) state.chats.set(chat, []);
  return state.chats.get(chat);
}

function windowText(user) {
  const w = state.windows.get(user);
  if (!w) return "";
  if (w.open) return `window open · ${w.remaining}/10 sends left · until ${new Date(w.expires_at * 1000).toLocaleTimeString()}`;
  return `window closed (${w.reason})`;
}

function windowBrief(user) {
  const w = state.windows.get(user);
  if (!w) return "";
  return w.open ? ` · ${w.remaining}/10` : ` · closed (${w.reason})`;
}

function select(chat) {
  state.active = chat;
  state.unread.set(chat, 0);
  render();
  $("text").focus();
}

// --- events ------------------------------------------------------------------------------

function onEvent(ev) {
  switch (ev.type) {
    case "user":
      state.users.set(ev.user, ev.name);
      items(`u:${ev.user}`);
      if (!state.active) state.active = `u:${ev.user}`;
      break;
    case "group":
      state.groups.set(ev.group, { name: ev.name, members: ev.members });
      items(`g:${ev.group}`);
      break;
    case "message":
      state.lastChat.set(ev.sender, ev.chat);
      items(ev.chat).push({ ...ev, me: true });
      break;
    case "reply":
      items(ev.chat).push(ev);
      if (ev.chat !== state.active) state.unread.set(ev.chat, (state.unread.get(ev.chat) || 0) + 1);
      break;
    case "progress": {
      const list = items(ev.chat);
      let run = list.find((i) => i.type === "run" && i.run_id === ev.run_id);
      if (!run) { run = { type: "run", run_id: ev.run_id, calls: new Map() }; list.push(run); }
      run.calls.set(ev.call_id || ev.tool, { tool: ev.tool, status: ev.status });
      break;
    }
    case "typing": state.typing.set(ev.user, ev.on); break;
    case "window": state.windows.set(ev.user, ev); break;
    case "fault":
      for (const f of state.faults) if (f.name === ev.name) f.on = ev.on;
      logFault(`${ev.on ? "on " : "off"} ${ev.name}`);
      break;
    case "fault_hit": logFault(`${ev.endpoint}: ${ev.kind}`); break;
    case "error": logFault(`error: ${ev.detail}`); break;
    case "bot": {
      const node = $("bot-state");
      node.textContent = ev.state === "running" ? "bot running in this process" : `bot stopped: ${ev.detail}`;
      node.classList.toggle("stopped", ev.state !== "running");
      break;
    }
  }
  scheduleRender();
}

function logFault(text) {
  const log = $("fault-log");
  log.prepend(el("li", {}, `${new Date().toLocaleTimeString()} ${text}`));
  while (log.children.length > 60) log.lastChild.remove();
}

let pending = false;
function scheduleRender() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => { pending = false; render(); });
}

// --- rendering ---------------------------------------------------------------------------

const INLINE = /(\*\*[^*\n]+\*\*|`[^`\n]+`|\*[^*\s][^*\n]*\*|_[^_\s][^_\n]*_)/;

function inline(text) {
  return text.split(INLINE).filter((p) => p).map((part) => {
    if (/^\*\*.+\*\*$/.test(part)) return el("strong", {}, part.slice(2, -2));
    if (/^`.+`$/.test(part)) return el("code", {}, part.slice(1, -1));
    if (/^([*_]).+\1$/.test(part)) return el("em", {}, part.slice(1, -1));
    return part;
  });
}

function richText(text) {
  // The text is what the bot sent (after its markdown filter); the page renders the
  // markup that survives the filter: headings, bold, italics, code.
  const box = el("span");
  let fence = null;
  for (const line of text.split("\n")) {
    if (line.startsWith("```")) {
      if (fence) { box.append(el("pre", {}, fence.join("\n"))); fence = null; } else fence = [];
      continue;
    }
    if (fence) { fence.push(line); continue; }
    const heading = /^#{1,4} (.*)$/.exec(line);
    box.append(heading ? el("strong", { class: "heading" }, ...inline(heading[1])) : el("span", {}, ...inline(line)), "\n");
  }
  if (fence) box.append(el("pre", {}, fence.join("\n")));
  if (box.lastChild && box.lastChild.nodeType === Node.TEXT_NODE) box.lastChild.remove();
  return box;
}

function content(item) {
  const url = item.media ? `/api/media/${item.media}` : null;
  switch (item.kind) {
    case "text": return richText(item.text || "");
    case "image": return el("img", { src: url, alt: item.me ? `image ${item.name}` : "image from the bot" });
    case "voice": return el("span", {}, "voice ", item.text ? `“${item.text}” ` : "", el("a", { href: url, download: item.name }, "download"));
    case "file":
    case "video": return el("a", { href: url, download: item.name }, `${item.kind === "video" ? "video" : "file"}: ${item.name}`);
    default: return item.text || "";
  }
}

function renderItem(item, group) {
  if (item.type === "run") {
    const calls = [...item.calls.values()].map((c) =>
      el("li", { class: c.status === "failed" ? "failed" : "" },
        `${c.tool}: ${c.status}`));
    return el("li", { class: "row" }, el("div", { class: "run", "aria-label": "Tool calls" },
      `tool calls · run ${String(item.run_id || "").slice(0, 8)} (WeChat does not show these)`, el("ul", {}, ...calls)));
  }
  const who = item.me ? (group ? state.users.get(item.sender) || item.sender : null) : "bot";
  return el("li", { class: item.me ? "row me" : "row" },
    who ? el("span", { class: "who" }, who) : null,
    el("div", { class: "bubble", "data-kind": item.kind }, content(item)));
}

function renderChats() {
  const list = $("chats");
  list.replaceChildren(...[...state.chats.keys()].map((chat) => {
    const unread = state.unread.get(chat) || 0;
    const user = chat.startsWith("u:") ? chat.slice(2) : null;
    return el("li", {}, el("button", {
      type: "button", "aria-label": `Chat with ${chatName(chat)}`,
      "aria-current": chat === state.active ? "true" : "false", onclick: () => select(chat),
    }, unread ? el("span", { class: "badge" }, String(unread)) : null, chatName(chat),
    el("small", {}, user ? `${user}${windowBrief(user)}` : `group · ${state.groups.get(chat.slice(2))?.members.length} members`)));
  }));
}

function renderChat() {
  const chat = state.active;
  if (!chat) return;
  const group = chat.startsWith("g:");
  $("chat-title").textContent = chatName(chat);
  const sender = $("sender");
  sender.hidden = !group;
  const members = group ? state.groups.get(chat.slice(2)).members : [chat.slice(2)];
  if (sender.dataset.chat !== chat) {
    sender.replaceChildren(...members.map((m) => el("option", { value: m }, state.users.get(m) || m)));
    sender.dataset.chat = chat;
  }
  const user = group ? sender.value : chat.slice(2);
  const win = $("window");
  win.textContent = windowText(user);
  win.classList.toggle("closed", !!state.windows.get(user) && !state.windows.get(user).open);
  const typing = members.some((m) => state.typing.get(m) && (state.lastChat.get(m) || `u:${m}`) === chat);
  $("typing").hidden = !typing;
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const list = items(chat);
  const grew = box.dataset.chat !== chat || Number(box.dataset.count) !== list.length;
  box.replaceChildren(...list.map((i) => renderItem(i, group)));
  if (atBottom || grew) box.scrollTop = box.scrollHeight;
  box.dataset.chat = chat;
  box.dataset.count = String(list.length);
}

function renderFaults() {
  const box = $("faults");
  box.replaceChildren(...state.faults.map((f) => el("label", {},
    el("input", { type: "checkbox", checked: f.on, "aria-label": f.label,
      onchange: (e) => post("/api/faults", { name: f.name, on: e.target.checked }).catch(alert) }),
    f.label)));
}

function render() { renderChats(); renderChat(); renderFaults(); }

// --- composer ----------------------------------------------------------------------------

function from() {
  const chat = state.active;
  return chat.startsWith("g:") ? { from: $("sender").value, group: chat.slice(2) } : { from: chat.slice(2) };
}

$("composer").addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = $("text").value;
  if (!text.trim() || !state.active) return;
  $("text").value = "";
  await post("/api/messages", { ...from(), text }).catch((err) => alert(err.message));
});

for (const kind of ["image", "file", "voice"]) {
  $(kind).addEventListener("change", async (e) => {
    const file = e.target.files[0];
    e.target.value = "";
    if (!file || !state.active) return;
    const query = { ...from(), kind, name: file.name };
    if (kind === "voice") query.transcript = prompt("Transcript the server sends with it (optional)") || "";
    await post("/api/upload", file, query).catch((err) => alert(err.message));
  });
}

$("add-user").addEventListener("submit", async (e) => {
  e.preventDefault();
  const name = $("new-user").value.trim();
  if (!name) return;
  $("new-user").value = "";
  const { user } = await post("/api/users", { name });
  select(`u:${user}`);
});

$("add-group").addEventListener("submit", async (e) => {
  e.preventDefault();
  const name = $("new-group").value.trim() || "Group";
  $("new-group").value = "";
  const { group } = await post("/api/groups", { name, members: [...state.users.keys()] });
  select(`g:${group}`);
});

$("sender").addEventListener("change", render);

// --- start -------------------------------------------------------------------------------

fetch("/api/state").then((r) => r.json()).then((s) => {
  state.faults = s.faults;
  $("bot-state").textContent = `no bot in this process: connect one to ${s.base_url}`;
  const source = new EventSource("/api/events");
  source.onmessage = (m) => onEvent(JSON.parse(m.data));
  render();
});
