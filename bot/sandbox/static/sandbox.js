// The sandbox page: long-polls /sandbox/state and sends what the user does to /sandbox/*,
// as the person picked in "you are". Messages arrive as HTML rendered (and escaped) by the
// server. A revision counts changes since the server's start (its epoch): when the epoch
// changes, the page asks for everything again.
"use strict";

const YOU = "tocsin-sandbox-as";
const page = {
  channel: null, revision: null, epoch: null, poll: null, modal: null, drills: null,
  you: localStorage.getItem(YOU), people: null,
};
const $ = (id) => document.getElementById(id);

function connected(ok) {
  $("disconnected").hidden = ok;
}

function showStatus(text, isError) {
  const el = $("status");
  el.textContent = text || "";
  el.className = isError ? "error" : "";
}

async function post(path, body) {
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ...body, as: page.you }),
    });
  } catch (e) {
    connected(false);
    throw new Error("Tocsin cannot be reached; try again once it answers");
  }
  let data = {};
  try { data = await response.json(); } catch (e) { data = { error: "HTTP " + response.status }; }
  if (!response.ok) throw new Error(data.error || "HTTP " + response.status);
  return data;
}

function channelLink(channel) {
  const a = document.createElement("a");
  a.dataset.channel = channel.id;
  a.className = (channel.id === page.channel ? "active " : "") + (channel.archived ? "archived" : "");
  const prefix = channel.kind === "im" ? "● " : channel.kind === "private" ? "🔒 " : "# ";
  const count = document.createElement("span");
  count.className = "count";
  count.textContent = channel.messages || "";
  a.append(count, prefix + channel.name);
  return a;
}

function renderChannels(channels) {
  const nav = $("channels");
  nav.replaceChildren();
  const groups = [["Channels", channels.filter((c) => c.kind !== "im")],
                  ["Direct messages", channels.filter((c) => c.kind === "im")]];
  for (const [title, list] of groups) {
    if (!list.length) continue;
    const head = document.createElement("div");
    head.className = "group";
    head.textContent = title;
    nav.appendChild(head);
    list.forEach((c) => nav.appendChild(channelLink(c)));
  }
}

function renderDrills(names) {
  if (page.drills !== null || !names) return;
  page.drills = names;
  const select = $("drill-alert");
  for (const name of names) {
    const option = document.createElement("option");
    option.value = option.textContent = name;
    select.appendChild(option);
  }
}

function options(select, people, chosen) {
  select.replaceChildren(...people.map((p) => {
    const option = document.createElement("option");
    option.value = p.id;
    option.textContent = p.name;
    option.dataset.handle = p.handle;
    return option;
  }));
  if (chosen && people.some((p) => p.id === chosen)) select.value = chosen;
}

function renderPeople(people, you) {
  const key = JSON.stringify(people);
  if (page.people !== key) {
    page.people = key;
    for (const id of ["lead-person", "override-person"]) options($(id), people, $(id).value);
    options($("you"), people, you);
  }
  $("you").value = you;
}

function item(text, className) {
  const li = document.createElement("li");
  li.textContent = text;
  if (className) li.className = className;
  return li;
}

function renderPaging(paging) {
  const body = $("paging-body");
  $("paging").hidden = !paging;
  if (!paging) return;
  const parts = [];
  for (const r of paging.rotations) {
    const head = document.createElement("div");
    head.className = "paging-title";
    head.textContent = "Rotation " + r.name;
    const list = document.createElement("ul");
    list.append(item("members: " + r.members.join(", ")),
      item("on call now: " + (r.now ? r.now + " until " + r.until : "nobody"), "now"));
    parts.push(head, list);
  }
  for (const p of paging.policies) {
    const head = document.createElement("div");
    head.className = "paging-title";
    head.textContent = "Policy " + p.name + (p.default ? " (default)" : "");
    const list = document.createElement("ol");
    p.levels.forEach((level) => list.append(item(level.targets.join(", ") + " — " + level.timeout)));
    list.append(item("nobody acknowledged: " + p.last_resort.join(", "), "last"));
    parts.push(head, list);
  }
  if (!parts.length) parts.push(item("No rotation or escalation policy is configured."));
  body.replaceChildren(...parts);
}

function renderChannel(channel) {
  const box = $("messages");
  $("hint").hidden = !(channel && channel.hint);
  $("hint").innerHTML = channel ? channel.hint : "";
  $("people-commands").classList.toggle("incident", !!(channel && channel.name.startsWith("inc-")));
  if (!channel) {
    $("channel-name").textContent = "";
    box.replaceChildren();
    return;
  }
  const switched = box.dataset.channel !== channel.id;
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  $("channel-name").textContent = "# " + channel.name;
  $("channel-topic").innerHTML = channel.topic;
  $("pins").hidden = channel.pin_count === 0;
  $("pins-summary").textContent = "📌 " + channel.pin_count + " pinned";
  $("pins-list").innerHTML = channel.pins;
  box.innerHTML = channel.messages;
  box.dataset.channel = channel.id;
  if (switched || atBottom) box.scrollTop = box.scrollHeight;
}

function renderModal(modal) {
  const dialog = $("modal");
  if (!modal) {
    page.modal = null;
    if (dialog.open) dialog.close();
    return;
  }
  if (page.modal === modal.id) return; // keep what the user typed
  page.modal = modal.id;
  $("modal-title").innerHTML = modal.title;
  $("modal-body").innerHTML = modal.html;
  $("modal-submit").innerHTML = modal.submit || "Submit";
  $("modal-submit").hidden = !modal.submit;
  $("modal-close").innerHTML = modal.close;
  if (!dialog.open) dialog.showModal();
}

function render(data) {
  if (page.epoch !== data.epoch) { // a new start: nothing the page kept from the last one holds
    page.epoch = data.epoch;
    page.modal = null;
  }
  page.revision = data.revision;
  page.you = data.you;
  renderPeople(data.people, data.you);
  renderPaging(data.paging);
  if (data.channel) page.channel = data.channel.id;
  renderDrills(data.drills);
  renderChannels(data.channels);
  renderChannel(data.channel);
  renderModal(data.modal);
}

async function pollForever() {
  for (;;) {
    const controller = new AbortController();
    page.poll = controller;
    const query = new URLSearchParams();
    if (page.channel) query.set("channel", page.channel);
    if (page.you) query.set("as", page.you);
    if (page.revision !== null && page.epoch !== null) {
      query.set("since", page.revision);
      query.set("epoch", page.epoch);
    }
    try {
      const response = await fetch("/sandbox/state?" + query, { signal: controller.signal });
      if (response.status === 400 && page.you) { page.you = null; continue; } // gone: start over
      if (!response.ok) throw new Error("HTTP " + response.status);
      const data = await response.json();
      connected(true);
      render(data);
    } catch (e) {
      if (e.name === "AbortError") continue;
      connected(false);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

function refresh() {
  page.revision = null; // answer at once, without waiting for a change
  if (page.poll) page.poll.abort();
}

function switchTo(channelId) {
  page.channel = channelId;
  document.body.classList.remove("menu-open");
  refresh();
}

function becomes(userId) {
  page.you = userId;
  localStorage.setItem(YOU, userId);
  refresh();
}

function mention(select) {
  const option = select.selectedOptions[0];
  return option ? "<@" + option.value + "|" + option.dataset.handle + ">" : "";
}

async function send(text) {
  showStatus("sending " + (text.startsWith("/") ? text.split(" ")[0] : "message") + "…");
  const answer = await post("/sandbox/command", { channel: page.channel, text });
  showStatus(answer.note || "");
}

async function peopleCommand(text) {
  try {
    await send(text);
  } catch (e) {
    showStatus(e.message, true);
  }
}

function askConfirm(dialogText) {
  const dialog = $("confirm");
  $("confirm-title").innerHTML = dialogText.title;
  $("confirm-text").innerHTML = dialogText.text;
  $("confirm-ok").innerHTML = dialogText.confirm;
  $("confirm-deny").innerHTML = dialogText.deny;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}

async function click(button) {
  if (button.dataset.url) window.open(button.dataset.url, "_blank", "noopener");
  if (button.dataset.confirm && !(await askConfirm(JSON.parse(button.dataset.confirm)))) return;
  const msg = button.closest(".msg");
  button.disabled = true;
  try {
    await post("/sandbox/action", {
      channel: page.channel, ts: msg.dataset.ts,
      action_id: button.dataset.actionId, block_id: button.dataset.blockId,
    });
    showStatus("");
  } catch (e) {
    showStatus(e.message, true);
  } finally {
    button.disabled = false;
  }
}

function reportTable(report) {
  const rows = [["webhook accepted", (report.accepted_seconds * 1000).toFixed(0) + " ms", ""]];
  for (const step of report.steps || []) {
    if (step.name === "incident opened") continue;
    const at = step.seconds === null ? "not reached" : "+" + step.seconds.toFixed(2) + " s";
    rows.push([step.name, at, step.detail || ""]);
  }
  const table = document.createElement("table");
  for (const cells of rows) {
    const tr = table.insertRow();
    cells.forEach((text) => { tr.insertCell().textContent = text; });
  }
  return table;
}

async function fireDrill() {
  const box = $("drill-report");
  box.hidden = false;
  box.textContent = "Drill running: " + $("drill-alert").value + "…";
  try {
    const report = await post("/sandbox/drill", { alertname: $("drill-alert").value });
    const title = document.createElement("div");
    title.innerHTML = "<b></b>";
    title.firstChild.textContent = "Drill " + report.drill + ": incident #" + report.incident +
      " in #" + report.channel + (report.timed_out ? " (timed out)" : "");
    box.replaceChildren(title, reportTable(report));
    const link = [...document.querySelectorAll("#channels a")].find(
      (a) => a.textContent.endsWith("# " + report.channel));
    if (link) switchTo(link.dataset.channel);
  } catch (e) {
    box.textContent = "Drill failed: " + e.message;
  }
}

function modalValues() {
  const values = {};
  for (const field of $("modal-body").querySelectorAll("[name]")) values[field.name] = field.value;
  return values;
}

async function submitModal(event) {
  event.preventDefault();
  $("modal-body").querySelectorAll(".bk-error").forEach((el) => { el.textContent = ""; });
  try {
    const answer = await post("/sandbox/view/submit", { view_id: page.modal, values: modalValues() });
    for (const [blockId, text] of Object.entries(answer.errors || {})) {
      const input = $("modal-body").querySelector(`.bk-input[data-block-id="${CSS.escape(blockId)}"] .bk-error`);
      if (input) input.textContent = text;
    }
    if (answer.ok) { page.modal = null; $("modal").close(); }
  } catch (e) {
    showStatus(e.message, true);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.body.addEventListener("click", (event) => {
    const button = event.target.closest(".bk-button");
    if (button && !button.closest("#modal")) { click(button); return; }
    const link = event.target.closest("[data-channel]");
    if (link && !link.matches("#messages")) switchTo(link.dataset.channel);
  });
  $("composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("composer-text");
    const text = input.value.trim();
    if (!text || !page.channel) return;
    input.value = "";
    try {
      await send(text);
    } catch (e) {
      input.value = text;
      showStatus(e.message, true);
    }
  });
  $("fire-drill").addEventListener("click", fireDrill);
  $("you").addEventListener("change", () => becomes($("you").value));
  $("set-lead").addEventListener("click",
    () => peopleCommand("/incident lead " + mention($("lead-person"))));
  $("set-override").addEventListener("click", () => peopleCommand(
    "/oncall override " + mention($("override-person")) + " " + $("override-for").value.trim()));
  $("menu").addEventListener("click", () => {
    const open = document.body.classList.toggle("menu-open");
    $("menu").setAttribute("aria-expanded", String(open));
  });
  $("modal-form").addEventListener("submit", submitModal);
  $("modal").addEventListener("cancel", () => $("modal-close").click());
  $("modal-close").addEventListener("click", async () => {
    const id = page.modal;
    page.modal = null;
    $("modal").close();
    if (id) await post("/sandbox/view/close", { view_id: id }).catch(() => {});
  });
  pollForever();
});
