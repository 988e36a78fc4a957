/*
 * Edits are never lost, nor silently turned into approvals; consequential approvals are deliberate.
 *
 * - While the edit form is open, the approve button (and the confirmation tick, if any) belong to it: `a`,
 *   even after Esc has left a field, saves the edit and approves it ("Approve as edited"). The decide form's
 *   `edit_open` tells the server the edit form is open, so an approval that does not carry the edit is refused
 *   there too. Cancel puts the edit away, discarding its changes.
 * - Leaving the page while the edit form holds changes (j/k, a link, closing the tab) asks first, through the
 *   browser's own "leave this page?" dialog (`beforeunload`). Submitting a decision does not ask.
 * - An approval that needs confirming (a tick naming the error findings or the high value) is not sent until
 *   the box is ticked: `a` moves to the box and says why; Space ticks it; `a` again approves.
 *
 * Loaded with <script src defer> after review-keys.js, whose handlers reveal and conceal the edit form.
 */
(function () {
  "use strict";

  var EDIT_FORM = "edit-form";
  // What the edit form held when it appeared, to tell a change from a form merely opened.
  var pristine = new WeakMap();
  // Set while a decision is being submitted: its redirect must not ask about the edit it carries.
  var deciding = false;

  function editForm() {
    return document.getElementById(EDIT_FORM);
  }

  function isOpen(form) {
    return !!form && !form.closest("[hidden]");
  }

  function values(form) {
    // The form's own controls only: the approve button and the tick are associated with it, not in it.
    return JSON.stringify(
      Array.prototype.map.call(form.querySelectorAll("input[name], select[name], textarea[name]"), function (field) {
        var checkable = field.type === "checkbox" || field.type === "radio";
        return [field.name, checkable ? field.checked : field.value];
      })
    );
  }

  function hasChanges(form) {
    if (!form) return false;
    // A refused edit came back from the server with what was typed: nothing of it is saved yet.
    if (form.hasAttribute("data-unsaved")) return true;
    return pristine.has(form) && pristine.get(form) !== values(form);
  }

  function setHidden(element, hidden) {
    if (element.hidden !== hidden) element.hidden = hidden;
  }

  // Keep the approve button, the tick, and the `edit_open` flag in step with the edit form. Idempotent: it runs
  // on every mutation of the page, its own included.
  function sync() {
    var form = editForm();
    if (form && !pristine.has(form)) pristine.set(form, values(form));
    var open = isOpen(form);
    Array.prototype.forEach.call(document.querySelectorAll("[data-follows-edit]"), function (control) {
      if (open && control.getAttribute("form") !== EDIT_FORM) control.setAttribute("form", EDIT_FORM);
      if (!open && control.hasAttribute("form")) control.removeAttribute("form");
      Array.prototype.forEach.call(control.querySelectorAll("[data-when]"), function (label) {
        setHidden(label, label.getAttribute("data-when") !== (open ? "edit" : "read"));
      });
    });
    Array.prototype.forEach.call(document.querySelectorAll("[data-edit-open]"), function (flag) {
      var value = open ? "1" : "";
      if (flag.value !== value) flag.value = value;
    });
  }

  new MutationObserver(sync).observe(document.documentElement, {
    subtree: true,
    childList: true,
    attributes: true,
    attributeFilter: ["hidden"],
  });

  document.addEventListener(
    "click",
    function (event) {
      if (!(event.target instanceof Element)) return;
      // An approval that needs its tick goes to the tick instead, which says what it confirms.
      var approve = event.target.closest("button[data-follows-edit]");
      var tick = document.getElementById("decide-confirm");
      if (approve && tick && !tick.checked) {
        event.preventDefault();
        event.stopPropagation();
        tick.focus();
        tick.reportValidity();
      }
    },
    true
  );

  document.addEventListener("click", function (event) {
    if (!(event.target instanceof Element)) return;
    // Cancel: review-keys.js has put the form away; its changes go with it. Edit then brings the item's
    // output back (the link's own address, ?edit=1, since its one-time fetch is spent).
    var cancel = event.target.closest("#" + EDIT_FORM + " [data-conceal='" + EDIT_FORM + "']");
    var form = editForm();
    if (cancel && hasChanges(form)) form.remove();
  });

  document.addEventListener(
    "submit",
    function (event) {
      var form = editForm();
      // Any form posting a decision (the edit, a rejection, another outcome) settles the edit one way or another.
      if (form && event.target instanceof HTMLFormElement && event.target.action === form.action) deciding = true;
    },
    true
  );

  // A refused decision comes back into the page (422, 409): from then on the page is being worked on again.
  // Only a form's own request says so: the live re-check of the edit, say, may settle while the decision is sent.
  function fromForm(event) {
    return !!event.detail && event.detail.elt instanceof HTMLFormElement;
  }
  document.addEventListener("htmx:afterSettle", function (event) {
    if (fromForm(event)) deciding = false;
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (fromForm(event) && event.detail.failed) deciding = false;
  });

  window.addEventListener("beforeunload", function (event) {
    var form = editForm();
    if (deciding || !isOpen(form) || !hasChanges(form)) return;
    event.preventDefault();
    // Older browsers show the dialog only when returnValue is set.
    event.returnValue = "";
  });

  sync();
})();
