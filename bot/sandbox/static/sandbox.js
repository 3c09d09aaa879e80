// The sandbox page: long-polls /sandbox/state and sends what the user does to /sandbox/*.
// Messages arrive as HTML rendered (and escaped) by the server.
"use strict";

const page = { channel: null, revision: null, poll: null, modal: null, drills: null };
const $ = (id) => document.getElementById(id);

function showStatus(text, isError) {
  const el = $("status");
  el.textContent = text || "";
  el.className = isError ? "error" : "";
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
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

function renderChannel(channel) {
  const box = $("messages");
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
  page.revision = data.revision;
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
    if (page.revision !== null) query.set("since", page.revision);
    try {
      const response = await fetch("/sandbox/state?" + query, { signal: controller.signal });
      if (!response.ok) throw new Error("HTTP " + response.status);
      render(await response.json());
    } catch (e) {
      if (e.name !== "AbortError") await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

function refresh() {
  page.revision = null; // answer at once, without waiting for a change
  if (page.poll) page.poll.abort();
}

function switchTo(channelId) {
  page.channel = channelId;
  refresh();
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
    showStatus("sending " + (text.startsWith("/") ? text.split(" ")[0] : "message") + "…");
    try {
      const answer = await post("/sandbox/command", { channel: page.channel, text });
      showStatus(answer.note || "");
    } catch (e) {
      input.value = text;
      showStatus(e.message, true);
    }
  });
  $("fire-drill").addEventListener("click", fireDrill);
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
