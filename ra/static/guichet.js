// Long actions: a form marked data-long shows progress and cannot be sent twice.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.matches("form[data-long]")) return;
  for (const button of form.querySelectorAll("button[type=submit]")) {
    button.disabled = true;
    button.dataset.label = button.textContent;
    button.textContent = form.dataset.long || "Traitement en cours…";
  }
  const bar = document.createElement("progress");
  bar.setAttribute("aria-label", form.dataset.long || "Traitement en cours");
  form.appendChild(bar);
});
