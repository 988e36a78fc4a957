/*
 * Autonomy page: the threshold slider and its number box move together, and the evidence table opens
 * scrolled to the recommended threshold.
 *
 * The number box is the form field and carries the htmx what-if request
 * (hx-trigger="input changed delay:200ms"); the slider only drives it, so the
 * page works without this script (type a number) and the preview updates
 * either way. Listeners are delegated from the document, so they survive
 * htmx swapping the form after a refused change.
 */
(function () {
  "use strict";

  function controlOf(element) {
    return element.closest(".policy-form") || document;
  }

  document.addEventListener("input", function (event) {
    var target = event.target;
    if (target.matches("[data-threshold-range]")) {
      var form = controlOf(target);
      var number = form.querySelector("[data-threshold-number]");
      var reviewAll = form.querySelector("[data-review-all]");
      if (!number) return;
      number.value = Number(target.value).toFixed(2);
      // Picking a threshold means not reviewing everything.
      if (reviewAll) reviewAll.checked = false;
      number.dispatchEvent(new Event("input", { bubbles: true }));
    } else if (target.matches("[data-threshold-number]")) {
      var range = controlOf(target).querySelector("[data-threshold-range]");
      var value = parseFloat(target.value);
      if (range && !isNaN(value)) range.value = String(Math.min(Math.max(value, 0), 1));
      var all = controlOf(target).querySelector("[data-review-all]");
      if (all && target.value !== "") all.checked = false;
    }
  });

  // A <details data-scroll-to="selector"> scrolls its table box to the matching row when opened.
  document.addEventListener(
    "toggle",
    function (event) {
      var details = event.target;
      if (!(details instanceof HTMLDetailsElement) || !details.open) return;
      var selector = details.getAttribute("data-scroll-to");
      var row = selector && details.querySelector(selector);
      var box = row && row.closest(".table-wrap");
      if (!box) return;
      var offset = row.getBoundingClientRect().top - box.getBoundingClientRect().top;
      box.scrollTop += offset - box.clientHeight / 2;
    },
    true
  );
})();
