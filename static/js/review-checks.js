/*
 * Findings and source lines on the item page.
 *
 * - Focusing a field (an edit input, or a row of the output as read) that carries data-source-lines highlights
 *   those lines of the source text, and scrolls them into view within the source panel (which scrolls on its own
 *   beside the fields on a wide screen).
 * - When the live re-check (#edit-findings, refreshed by htmx as the edit form changes) comes back, each
 *   field's findings list in the form is refilled from it (as text: findings are built from LLM output), and
 *   the field's aria-describedby names its list only while it has findings.
 */
(function () {
  "use strict";

  var HIGHLIGHT = "source__line--current";

  function highlight(lines) {
    Array.prototype.forEach.call(document.querySelectorAll("." + HIGHLIGHT), function (line) {
      line.classList.remove(HIGHLIGHT);
    });
    var first = null;
    lines.forEach(function (number) {
      var line = document.getElementById("source-line-" + number);
      if (!line) return;
      line.classList.add(HIGHLIGHT);
      first = first || line;
    });
    if (first) reveal(first);
  }

  // Scroll the source panel, where it scrolls beside the fields, so the line shows; never the page, which would
  // take the focused field out of view.
  function reveal(line) {
    var panel = line.closest(".review-source");
    if (!panel || panel.scrollHeight <= panel.clientHeight) return;
    var top = line.getBoundingClientRect().top - panel.getBoundingClientRect().top;
    var bottom = top + line.offsetHeight;
    if (top < 0 || bottom > panel.clientHeight) {
      panel.scrollTop += top - Math.max(0, (panel.clientHeight - line.offsetHeight) / 2);
    }
  }

  document.addEventListener("focusin", function (event) {
    if (!(event.target instanceof Element)) return;
    var holder = event.target.closest("[data-source-lines]");
    highlight(holder ? holder.getAttribute("data-source-lines").split(/\s+/).filter(Boolean) : []);
  });

  function describedBy(control, id, on) {
    var ids = (control.getAttribute("aria-describedby") || "").split(/\s+/).filter(function (token) {
      return token && token !== id;
    });
    if (on) ids.push(id);
    if (ids.length) control.setAttribute("aria-describedby", ids.join(" "));
    else control.removeAttribute("aria-describedby");
  }

  function refill(summary) {
    var form = summary.closest("form");
    if (!form) return;
    var byField = {};
    Array.prototype.forEach.call(summary.querySelectorAll("[data-field-id]"), function (entry) {
      var field = entry.getAttribute("data-field-id");
      if (!field) return;
      var message = entry.querySelector(".finding__message");
      (byField[field] = byField[field] || []).push({
        severity: entry.getAttribute("data-severity") || "error",
        text: message ? message.textContent : "",
      });
    });
    Array.prototype.forEach.call(form.querySelectorAll("[data-field-findings]"), function (list) {
      var field = list.getAttribute("data-field-findings");
      var found = byField[field] || [];
      while (list.firstChild) list.removeChild(list.firstChild);
      found.forEach(function (finding) {
        var item = document.createElement("li");
        item.className = "field-finding field-finding--" + finding.severity.replace(/[^a-z]/g, "");
        item.textContent = finding.text;
        list.appendChild(item);
      });
      list.hidden = found.length === 0;
      var control = document.getElementById(field);
      if (!control) return;
      describedBy(control, list.id, found.length > 0);
      if (found.length) control.setAttribute("data-finding", found[0].severity);
      else control.removeAttribute("data-finding");
    });
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target instanceof Element && target.id === "edit-findings") refill(target);
  });
})();
