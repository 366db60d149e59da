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

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-count]").forEach(counter);
  document.querySelectorAll("[data-must-equal]").forEach(mustEqual);
});
