// Scroll boxes (wide tables, long code, charts on a phone) that the keyboard can reach.
//
// What overflows a box that cannot take the focus is out of a keyboard user's reach (WCAG 2.1.1). Every box
// that overflows becomes a focusable region named after its section's heading, so arrow keys scroll it and a
// screen reader says what it is; a box that fits stays out of the tab order.
(function () {
  "use strict";

  var BOXES = ".table-wrap, .code--scroll, .chart-wrap";
  var MARK = "data-scroll-region";

  function heading(box) {
    var chart = box.querySelector("svg[role='img'] > title");
    if (chart && chart.textContent.trim()) return chart.textContent.trim();
    var caption = box.querySelector("caption");
    if (caption && caption.textContent.trim()) return caption.textContent.trim();
    for (var node = box.parentElement; node && node !== document.body; node = node.parentElement) {
      var title = node.querySelector(
        ":scope > h2, :scope > h3, :scope > summary, :scope > header h2, :scope > header h3, :scope > .panel__head .panel__title"
      );
      if (title && title.textContent.trim()) return title.textContent.trim().replace(/\s+/g, " ");
      var label = node.getAttribute("aria-label");
      if (label) return label;
    }
    return document.title.split(" · ")[0];
  }

  function update(box) {
    var overflows = box.scrollWidth > box.clientWidth + 1 || box.scrollHeight > box.clientHeight + 1;
    var ours = box.hasAttribute(MARK);
    if (overflows && !ours && !box.hasAttribute("tabindex")) {
      box.setAttribute(MARK, "");
      box.setAttribute("tabindex", "0");
      box.setAttribute("role", "region");
      box.setAttribute("aria-label", heading(box) + " (scrolls)");
    } else if (!overflows && ours) {
      box.removeAttribute(MARK);
      box.removeAttribute("tabindex");
      box.removeAttribute("role");
      box.removeAttribute("aria-label");
    }
  }

  // A box's overflow changes when it or its content changes size (a panel that htmx loads later, a narrower
  // window): each box and its content are watched, and boxes that htmx swaps in are watched too.
  var observer = "ResizeObserver" in window ? new ResizeObserver(function (entries) {
    entries.forEach(function (entry) {
      var box = entry.target.matches(BOXES) ? entry.target : entry.target.parentElement;
      if (box && box.matches(BOXES)) update(box);
    });
  }) : null;

  function watchAll() {
    document.querySelectorAll(BOXES).forEach(function (box) {
      update(box);
      if (observer && !box.hasAttribute("data-scroll-watched")) {
        box.setAttribute("data-scroll-watched", "");
        observer.observe(box);
        if (box.firstElementChild) observer.observe(box.firstElementChild);
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", watchAll);
  } else {
    watchAll();
  }
  document.addEventListener("htmx:afterSettle", watchAll);
  // A closed <details> (a chart's table, a raw JSON view) measures nothing until it opens.
  document.addEventListener("toggle", watchAll, true);
})();
