// Searchable pickers (the admin's autocomplete, select2) name their field for screen readers:
// select2's combobox is labelled by its current choice, which is empty until one is made.
"use strict";
(function () {
  function label(select) {
    const own = select.id && document.querySelector(`label[for="${select.id}"]`);
    const name = select.getAttribute("aria-label") || (own && own.textContent.replace(/:\s*$/, "").trim());
    const box = select.nextElementSibling && select.nextElementSibling.querySelector(".select2-selection");
    if (!name || !box) return;
    box.setAttribute("aria-label", name);
    box.removeAttribute("aria-labelledby");
    // the choice shown: its own text once there is one, the field's name while empty
    const shown = box.querySelector(".select2-selection__rendered");
    if (shown && !shown.textContent.trim()) shown.setAttribute("aria-label", name);
    else if (shown) shown.removeAttribute("aria-label");
  }
  function all() { document.querySelectorAll("select.admin-autocomplete").forEach(label); }
  if (window.django && window.django.jQuery) {
    window.django.jQuery(document).on("select2:open select2:close change formset:added", all);
  }
  window.addEventListener("load", all);
})();
