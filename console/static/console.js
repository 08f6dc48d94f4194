// The console's pages change things through the /v1 API (the signed-in session is the credential, the
// page's CSRF token goes in X-CSRF-Token). Errors come back in the API's one shape and are shown beside
// the field they name.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

async function api(method, path, body) {
  const init = {method, headers: {"X-CSRF-Token": csrf(), "Accept": "application/json"}, credentials: "same-origin"};
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = {error: {code: "bad_response", message: text}}; }
  return {ok: response.ok, status: response.status, data};
}

// Form fields -> a JSON body. data-kind: json (parsed; empty = null), bool (checkbox), omit-empty
// (left out when empty: a password left blank is kept), null-empty (empty = null), clear (see below).
function formBody(form) {
  const body = {};
  for (const el of form.querySelectorAll("[name]")) {
    if (el.name === "csrf_token") continue;
    const kind = el.dataset.kind || "text";
    let value;
    if (kind === "clear") {  // a "remove it" checkbox: null when ticked, else it adds nothing
      if (el.checked) body[el.name] = null;
      continue;
    }
    if (kind === "bool") value = el.checked;
    else if (kind === "json") {
      if (!el.value.trim()) value = null;
      else {
        try { value = JSON.parse(el.value); } catch (e) { throw {field: el.name, message: `${el.name} is not valid JSON: ${e.message}`}; }
      }
    } else {
      value = el.value;
      if (kind === "omit-empty" && value === "") continue;
      if (kind === "null-empty" && value === "") value = null;
    }
    body[el.name] = value;
  }
  return body;
}

function clearErrors(scope) {
  for (const el of scope.querySelectorAll("[data-error-for]")) { el.textContent = ""; el.hidden = true; }
  for (const el of scope.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

function showError(scope, field, message) {
  let slot = field ? scope.querySelector(`[data-error-for="${CSS.escape(field)}"]`) : null;
  const input = field ? scope.querySelector(`[name="${CSS.escape(field)}"]`) : null;
  if (input) input.setAttribute("aria-invalid", "true");
  if (!slot) slot = scope.querySelector('[data-error-for=""]');
  if (!slot) { alert(message); return; }
  slot.textContent = message;
  slot.hidden = false;
}

function apiError(result) {
  const error = (result.data && result.data.error) || {};
  return {field: error.field || "", message: error.message || `request failed (${result.status})`};
}

function then(el, data) {
  const next = el.dataset.then || "reload";
  if (next === "reload") location.reload();
  else if (next.startsWith("goto:")) location.assign(next.slice(5).replace("{id}", encodeURIComponent(data.id)));
  else if (renderers[next]) renderers[next](el, data);
}

const renderers = {
  // The four checks of a SIP account's Verify, each with its reason when it failed or was skipped.
  checks(el, data) {
    const target = document.getElementById(el.dataset.target);
    target.replaceChildren();
    for (const check of data.checks) {
      const row = document.createElement("li");
      row.className = `check check-${check.status}`;
      row.dataset.check = check.name;
      row.textContent = `${check.name.replace(/_/g, " ")}: ${check.status}` + (check.reason ? ` — ${check.reason}` : "");
      target.append(row);
    }
    target.hidden = false;
  },
  // A new API key's secret, shown once.
  secret(el, data) {
    const target = document.getElementById(el.dataset.target);
    target.querySelector("code").textContent = data.secret;
    target.hidden = false;
  },
  message(el, data) {
    const target = document.getElementById(el.dataset.target);
    target.textContent = el.dataset.message || "Done.";
    target.hidden = false;
  },
};

document.addEventListener("submit", async (event) => {
  const form = event.target.closest("form[data-api]");
  if (!form) return;
  event.preventDefault();
  clearErrors(form);
  let body;
  try { body = formBody(form); } catch (bad) { showError(form, bad.field, bad.message); return; }
  const [method, path] = form.dataset.api.split(" ");
  const result = await api(method, path, body);
  if (!result.ok) { const e = apiError(result); showError(form, e.field, e.message); return; }
  then(form, result.data);
});

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-api]");
  if (!button) return;
  event.preventDefault();
  if (button.dataset.confirm && !confirm(button.dataset.confirm)) return;
  const scope = button.closest("[data-scope]") || document;
  clearErrors(scope);
  const [method, path] = button.dataset.api.split(" ");
  button.disabled = true;
  try {
    const result = await api(method, path, button.dataset.body ? JSON.parse(button.dataset.body) : undefined);
    if (!result.ok) { const e = apiError(result); showError(scope, e.field, e.message); return; }
    then(button, result.data);
  } finally { button.disabled = false; }
});

// A call's page: status, transcript, answers and timeline follow the call by polling its JSON until it ends.
const FINAL = new Set(["completed", "failed", "no-answer", "busy", "canceled"]);

async function followCall(root) {
  const id = root.dataset.callLive;
  for (;;) {
    // The timeline is read after the call: once the call reads as ended, its timeline holds the end too.
    const call = await api("GET", `/v1/calls/${id}`);
    const events = await api("GET", `/v1/calls/${id}/events`);
    if (call.ok) renderCall(root, call.data);
    if (events.ok) renderEvents(root, events.data.data);
    if (!call.ok || FINAL.has(call.data.status)) {
      if (call.ok && call.data.recording_path) root.querySelector("[data-recording]")?.removeAttribute("hidden");
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function renderCall(root, call) {
  root.querySelector("[data-field=status]").textContent = call.status;
  root.querySelector("[data-field=status]").dataset.status = call.status;
  for (const name of ["duration_seconds", "hangup_cause", "answered_by"]) {
    const el = root.querySelector(`[data-field=${name}]`);
    if (el) el.textContent = call[name] ?? "";
  }
  const list = root.querySelector("[data-transcript]");
  const turns = call.transcript || [];
  while (list.children.length < turns.length) {
    const turn = turns[list.children.length];
    const row = document.createElement("li");
    row.className = `turn turn-${turn.speaker}`;
    const who = document.createElement("b");
    who.textContent = `${turn.speaker}: `;
    row.append(who, document.createTextNode(turn.text));
    list.append(row);
  }
  const answers = root.querySelector("[data-answers]");
  if (answers) answers.textContent = call.answers && Object.keys(call.answers).length ? JSON.stringify(call.answers, null, 2) : "";
}

function renderEvents(root, events) {
  const list = root.querySelector("[data-events]");
  while (list.children.length < events.length) {
    const event = events[list.children.length];
    const row = document.createElement("li");
    row.textContent = `${event.at}  ${event.from || "-"} → ${event.to}` + (event.reason ? `  (${event.reason})` : "");
    list.append(row);
  }
}

for (const root of document.querySelectorAll("[data-call-live]")) followCall(root);

// The calls list refreshes the statuses of the calls still in progress: one request lists every call not yet
// ended; a shown call missing from it has ended, and only that one is read again for its final status.
const NOT_ENDED = "queued,scheduled,calling,ringing,in-progress";

async function followList(table) {
  for (;;) {
    const live = [...table.querySelectorAll("[data-live-status]")].filter((el) => !FINAL.has(el.textContent.trim()));
    if (!live.length) return;
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const open = await api("GET", `/v1/calls?status=${NOT_ENDED}&limit=200`);
    if (!open.ok) continue;
    const statuses = new Map(open.data.data.map((call) => [call.id, call.status]));
    for (const el of live) {
      const id = el.dataset.liveStatus;
      if (statuses.has(id)) { el.textContent = statuses.get(id); continue; }
      if (open.data.has_more) continue;  // more than a page of live calls: this one may still be live
      const ended = await api("GET", `/v1/calls/${id}`);
      if (!ended.ok) continue;
      el.textContent = ended.data.status;
      const seconds = table.querySelector(`[data-live-seconds="${CSS.escape(id)}"]`);
      if (seconds) seconds.textContent = ended.data.duration_seconds ?? "";
    }
  }
}

for (const table of document.querySelectorAll("[data-follow-list]")) followList(table);

// "Talk to this agent" on an agent's page: the web call is created with this session; its token opens the
// talk page (microphone -> the voice pipeline), which takes it from the query.
const talkStart = document.getElementById("talk-start");
if (talkStart) {
  talkStart.addEventListener("click", async () => {
    const agentId = talkStart.dataset.agentId;
    const error = document.getElementById("talk-error");
    talkStart.disabled = true;
    const result = await api("POST", `/v1/agents/${encodeURIComponent(agentId)}/web-calls`);
    if (!result.ok) {
      error.textContent = (result.data && result.data.error && result.data.error.message) || `HTTP ${result.status}`;
      error.hidden = false;
      talkStart.disabled = false;
      return;
    }
    const query = new URLSearchParams({call: result.data.call.id, token: result.data.token});
    location.assign(`/talk/${encodeURIComponent(agentId)}?${query}`);
  });
}
