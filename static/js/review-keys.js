/*
 * Keyboard shortcuts and small interactions of the review pages.
 *
 * Loaded with <script src defer>: the CSP allows no inline script or handler. Everything is wired by
 * event delegation on the document, so content swapped in by htmx works without re-binding.
 *
 * Any element with data-key="x" is clicked when x is pressed (a approve, e edit, j/k next and previous
 * item, u queue). Reject is two keys: r shows the numbered reasons, a digit rejects with that reason, Esc
 * cancels. On the queue, j/k move a selection through the rows instead, Enter or o opens the selected row,
 * x ticks it and A (shift+a) approves the ticked rows (with bulk approval's confirmation). ? toggles the help
 * dialog. Keys are ignored while typing in a field, and all of them when the user turned shortcuts off
 * (<body data-shortcuts="off">, WCAG 2.1.4).
 *
 * Looking at an item claims nothing; starting work on it does (r, e, the first key typed in one of its
 * forms): the claim banner's data-work-url is posted once, and its data-claim-url, present while the user
 * holds the claim, every minute while they are active.
 */
(function () {
  "use strict";

  var CLAIM_EVERY_MS = 60 * 1000;
  var IDLE_AFTER_MS = 4 * 60 * 1000;
  var lastActivity = Date.now();

  function isTyping(target) {
    if (!(target instanceof Element)) return false;
    if (target.isContentEditable) return true;
    if (target.tagName === "TEXTAREA" || target.tagName === "SELECT") return true;
    if (target.tagName !== "INPUT") return false;
    return ["checkbox", "radio", "button", "submit", "reset"].indexOf(target.type) === -1;
  }

  function isShown(element) {
    return !element.closest("[hidden]") && element.getClientRects().length > 0;
  }

  // ---- queue rows ----

  function queueRows() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-keynav] tbody tr[data-href]"));
  }

  function selectedRow() {
    return document.querySelector("[data-keynav] tbody tr.is-selected");
  }

  function selectRow(row) {
    var current = selectedRow();
    if (current) {
      current.classList.remove("is-selected");
      current.removeAttribute("aria-selected");
    }
    row.classList.add("is-selected");
    row.setAttribute("aria-selected", "true");
    row.scrollIntoView({ block: "nearest" });
  }

  function moveSelection(step) {
    var rows = queueRows();
    if (!rows.length) return false;
    var index = rows.indexOf(selectedRow());
    var next = index < 0 ? (step > 0 ? 0 : rows.length - 1) : Math.min(rows.length - 1, Math.max(0, index + step));
    selectRow(rows[next]);
    return true;
  }

  // ---- help dialog ----

  function toggleDialog(id) {
    var dialog = document.getElementById(id);
    if (!dialog || typeof dialog.showModal !== "function") return;
    if (dialog.open) dialog.close();
    else dialog.showModal();
  }

  // ---- reveal / conceal panels (Edit, Reject) ----

  function focusFirstField(container) {
    var field = container.querySelector(
      "[aria-invalid='true'], input:not([type='hidden']):not([type='checkbox']), select, textarea"
    );
    if (field) field.focus();
  }

  function reveal(trigger) {
    var panel = document.getElementById(trigger.getAttribute("data-reveal"));
    if (!panel) return false;
    panel.hidden = false;
    var conceal = trigger.getAttribute("data-conceal");
    if (conceal && document.getElementById(conceal)) document.getElementById(conceal).hidden = true;
    panel.scrollIntoView({ block: "nearest" });
    focusFirstField(panel);
    return true;
  }

  function conceal(trigger) {
    var panel = document.getElementById(trigger.getAttribute("data-conceal"));
    if (!panel) return false;
    panel.hidden = true;
    var restore = trigger.getAttribute("data-restore");
    if (restore && document.getElementById(restore)) document.getElementById(restore).hidden = false;
    return true;
  }

  // ---- claim: on starting work, not on looking ----

  var workClaimed = false;

  function claimBanner() {
    return document.querySelector("#claim-banner[data-work-url]");
  }

  function postClaim(banner, url) {
    if (!window.htmx) return;
    window.htmx.ajax("POST", url, { source: banner, target: "#claim-banner", swap: "outerHTML" });
  }

  function startWork() {
    var banner = claimBanner();
    if (workClaimed || !banner || banner.hasAttribute("data-claim-url")) return;
    workClaimed = true;
    postClaim(banner, banner.getAttribute("data-work-url"));
  }

  // ---- reject: r, then the reason's digit ----

  var rejecting = false;

  function rejectKeys() {
    return document.querySelector("#reject-form [data-reject-keys]");
  }

  function startReject() {
    var form = document.getElementById("reject-form");
    var keys = rejectKeys();
    if (!form || !keys) return false;
    form.hidden = false;
    keys.hidden = false;
    rejecting = true;
    if (document.activeElement instanceof HTMLElement) document.activeElement.blur();
    form.scrollIntoView({ block: "nearest" });
    startWork();
    return true;
  }

  function stopReject() {
    var form = document.getElementById("reject-form");
    var keys = rejectKeys();
    rejecting = false;
    if (keys) keys.hidden = true;
    if (form) form.hidden = true;
  }

  function rejectWith(digit) {
    var form = document.getElementById("reject-form");
    var select = form && form.querySelector("select[name='reason_code']");
    if (!select || digit < 1 || digit >= select.options.length) return false;
    select.selectedIndex = digit;
    rejecting = false;
    form.requestSubmit();
    return true;
  }

  // ---- bulk selection ----

  var SHOWN_SELECTED = 5;

  function updateBulk(form) {
    var counter = form.querySelector("[data-selected-count]");
    if (!counter) return;
    var boxes = form.querySelectorAll("input[name='items']");
    var checked = form.querySelectorAll("input[name='items']:checked");
    var ticked = checked.length;
    var names = Array.prototype.slice.call(checked, 0, SHOWN_SELECTED).map(function (box) {
      return box.getAttribute("data-summary") || box.value;
    });
    if (ticked > SHOWN_SELECTED) names.push("and " + (ticked - SHOWN_SELECTED) + " more");
    counter.textContent = ticked ? ticked + " selected: " + names.join(", ") : "None selected";
    var label = form.querySelector("[data-bulk-label]");
    if (label) label.textContent = ticked ? ticked + " selected" : "selected";
    var submit = form.querySelector("[data-bulk-submit]");
    if (submit) submit.disabled = ticked === 0;
    var all = form.querySelector("[data-check-all]");
    if (all) {
      all.checked = boxes.length > 0 && ticked === boxes.length;
      all.indeterminate = ticked > 0 && ticked < boxes.length;
    }
  }

  function initBulk(root) {
    var scope = root && root.querySelectorAll ? root : document;
    Array.prototype.forEach.call(scope.querySelectorAll("form"), function (form) {
      if (form.querySelector("[data-selected-count]")) updateBulk(form);
    });
  }

  // ---- events ----

  function shortcutsOff() {
    return document.body.getAttribute("data-shortcuts") === "off";
  }

  document.addEventListener("keydown", function (event) {
    lastActivity = Date.now();
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || shortcutsOff()) return;
    if (isTyping(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    var key = event.key;
    if (rejecting) {
      if (key === "Escape") stopReject();
      else if (/^[0-9]$/.test(key)) rejectWith(parseInt(key, 10));
      event.preventDefault();
      return;
    }
    if (key === "?") {
      toggleDialog("keys-help");
      event.preventDefault();
      return;
    }
    if (document.querySelector("dialog[open]")) return;

    if (queueRows().length) {
      if (key === "j" || key === "k") {
        moveSelection(key === "j" ? 1 : -1);
        event.preventDefault();
        return;
      }
      var row = selectedRow();
      var onControl = event.target instanceof Element && event.target.closest("a, button");
      if ((key === "Enter" && !onControl) || key === "o") {
        if (row) {
          window.location.href = row.getAttribute("data-href");
          event.preventDefault();
        }
        return;
      }
      if (key === "A") {
        var bulk = document.querySelector("[data-bulk-submit]");
        if (bulk && !bulk.disabled && bulk.form) bulk.form.requestSubmit(bulk);
        event.preventDefault();
        return;
      }
      if (key === "x" && row) {
        var box = row.querySelector("input[type='checkbox']");
        if (box) {
          box.checked = !box.checked;
          box.dispatchEvent(new Event("change", { bubbles: true }));
        }
        event.preventDefault();
        return;
      }
    }

    if (key === "r" && startReject()) {
      event.preventDefault();
      return;
    }
    if (key === "e") startWork();
    var target = document.querySelector('[data-key="' + key.replace(/["\\]/g, "") + '"]');
    if (target && !target.disabled && target.getAttribute("aria-disabled") !== "true" && isShown(target)) {
      event.preventDefault();
      target.click();
    }
  });

  document.addEventListener("click", function (event) {
    if (!(event.target instanceof Element)) return;
    var dialogButton = event.target.closest("[data-dialog]");
    if (dialogButton) {
      toggleDialog(dialogButton.getAttribute("data-dialog"));
      return;
    }
    var revealer = event.target.closest("[data-reveal]");
    if (revealer && reveal(revealer)) {
      event.preventDefault();
      return;
    }
    var concealer = event.target.closest("[data-conceal]:not([data-reveal])");
    if (concealer && conceal(concealer)) {
      event.preventDefault();
      return;
    }
    // A click on a queue row (not on its link or checkbox) selects it for the keyboard.
    var row = event.target.closest("[data-keynav] tbody tr[data-href]");
    if (row && !event.target.closest("a, input, label, button")) selectRow(row);
  });

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!(target instanceof HTMLInputElement) || !target.form) return;
    if (target.hasAttribute("data-check-all")) {
      Array.prototype.forEach.call(target.form.querySelectorAll("input[name='items']"), function (box) {
        box.checked = target.checked;
      });
    }
    if (target.form.querySelector("[data-selected-count]")) updateBulk(target.form);
  });

  // After htmx swaps in a form refused with errors (422), put the cursor on the first field to fix.
  // The swapped element is replaced (outerHTML), so look in the document, not in the event's target.
  document.addEventListener("htmx:afterSettle", function (event) {
    initBulk(document);
    // A panel fetched on first use (the edit form) opens once it is in, as a click on a loaded one does.
    var trigger = event.detail && event.detail.requestConfig && event.detail.requestConfig.elt;
    if (trigger instanceof Element && trigger.hasAttribute("data-reveal")) reveal(trigger);
    var xhr = event.detail && event.detail.xhr;
    if (!xhr || xhr.status !== 422) return;
    var invalid = Array.prototype.find.call(document.querySelectorAll("[aria-invalid='true']"), isShown);
    if (invalid) {
      invalid.focus();
      invalid.scrollIntoView({ block: "center" });
    }
  });

  // ---- claim heartbeat: keep the item while the reviewer is at it, let it lapse when they are not ----

  // The first key typed in one of the item's forms is starting work on it.
  document.addEventListener("input", function (event) {
    if (event.target instanceof Element && event.target.closest("#review-main form")) startWork();
  });

  ["mousemove", "scroll", "click", "input"].forEach(function (type) {
    document.addEventListener(type, function () {
      lastActivity = Date.now();
    }, { passive: true });
  });

  window.setInterval(function () {
    var banner = document.querySelector("#claim-banner[data-claim-url]");
    if (!banner || !window.htmx || document.visibilityState !== "visible") return;
    if (Date.now() - lastActivity > IDLE_AFTER_MS) return;
    postClaim(banner, banner.getAttribute("data-claim-url"));
  }, CLAIM_EVERY_MS);

  initBulk(document);
})();
