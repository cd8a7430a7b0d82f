// The settings screen's behaviour: records list, form, command buttons, dialogs and long jobs.
// It knows no plugin: names of fields and commands come from the page the server rendered
// from the EditorSpec. Every request that changes something carries the CSRF token.
"use strict";

(() => {
  const root = document.getElementById("editor");
  if (!root) return;

  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const recordType = root.dataset.recordType;
  const keyField = root.dataset.keyField;
  const $ = (id) => document.getElementById(id);
  const form = $("record-form");
  const list = $("record-list");
  const statusLine = $("status");
  const details = $("details");
  const commandError = $("command-error");
  const jobBox = $("job");
  const fieldInputs = () => form.querySelectorAll("[data-field-input]");
  const fieldInput = (name) =>
    form.querySelector(`[data-field-input][name="${CSS.escape(name)}"]`);

  let selected = ""; // the selected record's key ("" for a new record)
  let job = null; // the running long command: {id, opened, timer}

  const api = (path) => `/api/editors/${encodeURIComponent(recordType)}${path}`;

  async function call(url, options = {}) {
    let response;
    try {
      response = await fetch(url, {
        credentials: "same-origin",
        ...options,
        headers: { Accept: "application/json", "X-CSRF-Token": csrf },
      });
    } catch (error) {
      return { status: 0, answer: { ok: false, error: { message: "The screen's server does not answer: is hostsim ui still running?" } } };
    }
    let answer;
    try {
      answer = await response.json();
    } catch (error) {
      answer = { ok: false, error: { message: `HTTP ${response.status}` } };
    }
    return { status: response.status, answer };
  }

  // --- the records list and the form -------------------------------------------------------

  function showRecords(records) {
    list.replaceChildren(
      ...records.map((record) => {
        const item = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = record.key;
        if (record.key === selected) button.setAttribute("aria-current", "true");
        button.addEventListener("click", () => select(record.key));
        item.append(button);
        return item;
      }),
    );
    $("records-empty").hidden = records.length > 0;
  }

  async function loadRecords() {
    const { answer } = await call(api("/records"));
    $("records-error").textContent = answer.ok ? "" : answer.error.message;
    if (answer.ok) showRecords(answer.records);
  }

  async function select(key) {
    clearMessages();
    const { answer } = await call(api(`/record?key=${encodeURIComponent(key)}`));
    if (!answer.ok) {
      commandError.textContent = answer.error.message;
      await loadRecords();
      return;
    }
    fill(answer.record);
  }

  function fill(record) {
    clearFieldErrors();
    selected = record ? record.key : "";
    for (const input of fieldInputs()) {
      const value = record && input.name in record.values ? record.values[input.name] : "";
      input.value = input.type === "password" ? "" : value;
    }
    for (const state of form.querySelectorAll("[data-secret-state]")) {
      const set = Boolean(record && record.secrets[state.dataset.secretState]);
      state.textContent = set ? "Set" : "Not set";
    }
    for (const box of form.querySelectorAll("[data-clear]")) box.checked = false;
    const key = fieldInput(keyField);
    if (key && !key.hasAttribute("data-read-only")) key.readOnly = Boolean(record);
    $("form-title").textContent = record ? `Record: ${record.key}` : "New record";
    for (const button of document.querySelectorAll("[data-needs-record]")) {
      button.disabled = !record;
    }
    for (const name of document.querySelectorAll("[data-selected-record]")) {
      name.textContent = selected;
    }
    for (const button of list.querySelectorAll("button")) {
      if (button.textContent === selected) button.setAttribute("aria-current", "true");
      else button.removeAttribute("aria-current");
    }
  }

  function formValues() {
    const values = {};
    for (const input of fieldInputs()) {
      if (input.hasAttribute("data-read-only")) continue;
      if (input.type === "password") {
        const clear = form.querySelector(`[data-clear="${CSS.escape(input.name)}"]`);
        if (input.value) values[input.name] = input.value;
        else if (clear && clear.checked) values[input.name] = "";
        continue;
      }
      values[input.name] = input.value;
    }
    return values;
  }

  // --- messages ----------------------------------------------------------------------------

  function clearFieldErrors() {
    for (const error of form.querySelectorAll("[data-error-for]")) error.textContent = "";
    for (const input of fieldInputs()) input.removeAttribute("aria-invalid");
  }

  function clearMessages() {
    clearFieldErrors();
    commandError.textContent = "";
    statusLine.textContent = "";
    details.hidden = true;
    details.replaceChildren();
  }

  function showDetails(rows) {
    details.replaceChildren();
    for (const [name, text] of rows || []) {
      const term = document.createElement("dt");
      term.textContent = name;
      const value = document.createElement("dd");
      value.textContent = text;
      details.append(term, value);
    }
    details.hidden = !(rows && rows.length);
  }

  function download(file) {
    const link = document.createElement("a");
    link.href = file.url;
    link.download = file.filename;
    link.hidden = true;
    document.body.append(link);
    link.click();
    link.remove();
  }

  function handle(answer, dialog) {
    const fieldErrors = answer.field_errors || {};
    for (const [name, message] of Object.entries(fieldErrors)) {
      const error = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
      if (error) error.textContent = message;
      const input = fieldInput(name);
      if (input) input.setAttribute("aria-invalid", "true");
    }
    if (Object.keys(fieldErrors).length && dialog) dialog.close(); // the errors are in the form
    if (answer.records) showRecords(answer.records);
    if (!answer.ok) {
      const code = answer.error.code ? ` (${answer.error.code})` : "";
      const message = answer.label
        ? `${answer.label} failed${code}: ${answer.error.message}`
        : answer.error.message;
      const where = dialog && dialog.open ? dialog.querySelector("[data-dialog-error]") : commandError;
      where.textContent = message;
      return;
    }
    if (dialog) dialog.close();
    statusLine.textContent = answer.message || "";
    showDetails(answer.details);
    if (answer.record) fill(answer.record);
    else if (answer.record_gone) fill(null); // deleted or renamed
    for (const file of answer.downloads || []) download(file);
  }

  // --- running commands --------------------------------------------------------------------

  async function run(commandId, { params = {}, files = [], dialog = null } = {}) {
    clearMessages();
    if (dialog) dialog.querySelector("[data-dialog-error]").textContent = "";
    const body = new FormData();
    body.append("record", selected);
    body.append("form", JSON.stringify(formValues()));
    body.append("params", JSON.stringify(params));
    for (const [name, file] of files) body.append(name, file);
    form.setAttribute("aria-busy", "true");
    const url = api(`/commands/${encodeURIComponent(commandId)}`);
    const { status, answer } = await call(url, { method: "POST", body });
    form.removeAttribute("aria-busy");
    if (status === 202 && answer.job) {
      if (dialog) dialog.close();
      startJob(answer);
      return;
    }
    handle(answer, dialog);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (form.dataset.save) run(form.dataset.save);
  });

  for (const button of form.querySelectorAll("button[data-command]")) {
    button.addEventListener("click", () => {
      if (button.dataset.dialog) openDialog($(button.dataset.dialog));
      else run(button.dataset.command);
    });
  }

  function openDialog(dialog) {
    dialog.querySelector("[data-dialog-error]").textContent = "";
    dialog.showModal();
  }

  for (const dialogForm of document.querySelectorAll("form.command-form")) {
    const dialog = dialogForm.closest("dialog");
    dialogForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const params = {};
      const files = [];
      for (const input of dialogForm.querySelectorAll("[data-param]")) {
        const name = input.dataset.param;
        if (input.type === "checkbox") params[name] = input.checked ? "true" : "false";
        else if (input.type === "file") {
          if (input.files.length) files.push([name, input.files[0]]);
        } else if (input.value !== "") params[name] = input.value;
      }
      run(dialogForm.dataset.command, { params, files, dialog });
    });
    dialogForm.querySelector("[data-close]").addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      for (const secret of dialogForm.querySelectorAll('input[type="password"]')) secret.value = "";
    });
  }

  $("new-record").addEventListener("click", () => {
    clearMessages();
    fill(null);
    const key = fieldInput(keyField);
    if (key) key.focus();
  });

  // --- long-running commands (Get Refresh Token) -----------------------------------------

  function timeLeft(seconds) {
    const minutes = Math.floor(seconds / 60);
    return `${minutes}:${String(seconds % 60).padStart(2, "0")} left`;
  }

  function showJob(status) {
    $("job-title").textContent = `${status.label}: waiting`;
    const left = typeof status.seconds_left === "number" ? `, ${timeLeft(status.seconds_left)}` : "";
    const what = status.open_url ? "Waiting for you to sign in in the new tab" : "Working";
    $("job-text").textContent = status.cancelling ? "Cancelling…" : `${what}${left}.`;
    $("job-log").textContent = (status.log || []).join("\n");
    if (status.open_url && !job.opened) {
      job.opened = true;
      $("job-link").href = status.open_url;
      $("job-link-line").hidden = false;
      window.open(status.open_url, "_blank", "noopener,noreferrer");
    }
  }

  function startJob(status) {
    job = { id: status.job, opened: false, timer: null };
    jobBox.hidden = false;
    $("job-link-line").hidden = true;
    $("job-cancel").disabled = false;
    showJob(status);
    job.timer = setInterval(poll, 500);
  }

  function endJob() {
    if (!job) return;
    clearInterval(job.timer);
    job = null;
    jobBox.hidden = true;
  }

  async function poll() {
    if (!job) return;
    const current = job;
    const { answer } = await call(`/api/jobs/${encodeURIComponent(current.id)}`);
    if (job !== current) return;
    if (!answer.ok) {
      endJob();
      commandError.textContent = answer.error.message;
      return;
    }
    showJob(answer);
    if (answer.state === "finished") {
      endJob();
      handle(answer.answer, null);
    }
  }

  $("job-cancel").addEventListener("click", async () => {
    if (!job) return;
    $("job-cancel").disabled = true;
    $("job-text").textContent = "Cancelling…";
    await call(`/api/jobs/${encodeURIComponent(job.id)}/cancel`, { method: "POST", body: new FormData() });
  });

  loadRecords();
})();
