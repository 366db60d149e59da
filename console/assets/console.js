// Berth console: a little plain JavaScript where it helps. Every page works
// without it; this adds copy buttons, live character counts, dialogs, a
// typed-name check before a delete, and upload progress.
"use strict";

document.addEventListener("click", (event) => {
  const copy = event.target.closest("[data-copy]");
  if (copy) {
    const text = copy.getAttribute("data-copy");
    navigator.clipboard.writeText(text).then(() => {
      const was = copy.textContent;
      copy.textContent = copy.getAttribute("data-copied") || "✓";
      setTimeout(() => { copy.textContent = was; }, 1500);
    });
  }
  const open = event.target.closest("[data-open]");
  if (open) {
    const dialog = document.getElementById(open.getAttribute("data-open"));
    if (dialog && dialog.showModal) { event.preventDefault(); dialog.showModal(); }
  }
  const close = event.target.closest("[data-close]");
  if (close) {
    const dialog = close.closest("dialog");
    if (dialog) { event.preventDefault(); dialog.close(); }
  }
});

function counter(field) {
  const out = document.getElementById(field.getAttribute("data-count"));
  if (!out) { return; }
  const update = () => {
    const used = Array.from(field.value).length;
    out.textContent = out.getAttribute("data-template")
      .replace("{used}", used).replace("{max}", field.getAttribute("maxlength"));
  };
  field.addEventListener("input", update);
  update();
}

function mustEqual(field) {
  const button = field.form && field.form.querySelector("button[type=submit]");
  if (!button) { return; }
  const update = () => { button.disabled = field.value !== field.getAttribute("data-must-equal"); };
  field.addEventListener("input", update);
  update();
}

// The page upload: one multipart request with every file, its progress
// shared out over the files in the order they are sent, and each file's
// result (its images and tags, or why it was refused) from the answer.
function upload(form) {
  const list = document.getElementById("upload-list");
  const result = document.getElementById("upload-result");
  const say = (key, values) => Object.entries(values || {}).reduce(
    (text, [k, v]) => text.replace("{" + k + "}", v), form.dataset[key]);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const files = Array.from(form.querySelector("input[type=file]").files);
    const namespace = form.querySelector("[name=namespace]").value.trim();
    if (files.length > 10) { result.textContent = say("tooMany"); return; }
    list.textContent = "";
    const rows = files.map((file) => {
      const item = document.createElement("li");
      const name = document.createElement("span");
      name.textContent = file.name;
      const bar = document.createElement("progress");
      bar.max = file.size || 1; bar.value = 0;
      bar.setAttribute("aria-label", file.name);
      const state = document.createElement("span");
      state.className = "state";
      state.textContent = say("waiting");
      item.append(name, bar, state);
      list.append(item);
      return { file, bar, state };
    });
    const body = new FormData();
    files.forEach((file) => body.append("file", file, file.name));
    const request = new XMLHttpRequest();
    request.open("POST", "/console/uploads/" + encodeURIComponent(namespace));
    request.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
    request.setRequestHeader("Idempotency-Key", form.dataset.key);
    request.upload.addEventListener("progress", (e) => {
      let left = e.loaded;
      rows.forEach((row) => {
        const here = Math.max(0, Math.min(row.file.size, left));
        left -= row.file.size;
        row.bar.value = here;
        if (here > 0) { row.state.textContent = say("sending"); }
      });
    });
    request.addEventListener("load", () => {
      let answer = {};
      try { answer = JSON.parse(request.responseText); } catch (_) { answer = { message: request.responseText }; }
      const job = answer.job || answer;
      rows.forEach((row, i) => {
        const report = (job.files || [])[i] || {};
        row.bar.value = row.bar.max;
        if (report.error) {
          row.state.textContent = say("refused", { message: report.error.message });
          row.state.className = "state error";
        } else if (request.status === 201) {
          const images = (report.images || []).map((img) => img.repository + ":" + img.tag).join(", ");
          row.state.textContent = say("stored", { images });
          row.state.className = "state ok";
        } else {
          row.state.textContent = say("refused", { message: answer.message || request.statusText });
          row.state.className = "state error";
        }
      });
      result.textContent = request.status === 201 ? say("done") : say("failed");
      form.dataset.key = crypto.randomUUID ? crypto.randomUUID() : String(Date.now());
    });
    request.send(body);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-count]").forEach(counter);
  document.querySelectorAll("[data-must-equal]").forEach(mustEqual);
  const form = document.getElementById("upload-form");
  if (form) { upload(form); }
});
