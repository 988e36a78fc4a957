/*
 * Rows of a list of objects (invoice line items) in the generated edit form.
 *
 * Without JavaScript the form offers one blank row and a "Remove" checkbox per row. With it, "Add a row"
 * appends a copy of the row <template>, its index placeholder replaced by the next free index; the
 * server renumbers rows in order on submit, so gaps left by removed rows do not matter.
 */
(function () {
  "use strict";

  function nextIndex(container, name) {
    var prefix = name + ".";
    var highest = -1;
    Array.prototype.forEach.call(container.querySelectorAll("input[type='hidden']"), function (input) {
      var field = input.getAttribute("name") || "";
      if (field.indexOf(prefix) !== 0 || field.slice(-6) !== ".__row") return;
      var index = parseInt(field.slice(prefix.length, -6), 10);
      if (!isNaN(index) && index > highest) highest = index;
    });
    return highest + 1;
  }

  function showAddButtons(root) {
    Array.prototype.forEach.call(root.querySelectorAll("[data-add-row][hidden]"), function (button) {
      button.hidden = false;
    });
  }

  document.addEventListener("click", function (event) {
    if (!(event.target instanceof Element)) return;
    var button = event.target.closest("[data-add-row]");
    if (!button) return;
    var name = button.getAttribute("data-add-row");
    var group = button.closest("[data-row-group]");
    if (!group) return;
    var rows = Array.prototype.find.call(group.querySelectorAll("[data-rows]"), function (element) {
      return element.getAttribute("data-rows") === name;
    });
    var template = Array.prototype.find.call(group.querySelectorAll("template[data-row-template]"), function (element) {
      return element.getAttribute("data-row-template") === name;
    });
    if (!rows || !template) return;
    var html = template.innerHTML.split(template.getAttribute("data-token")).join(String(nextIndex(rows, name)));
    rows.insertAdjacentHTML("beforeend", html);
    var added = rows.lastElementChild;
    showAddButtons(added);
    var first = added && added.querySelector("input:not([type='hidden']), select, textarea");
    if (first) first.focus();
  });

  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!(box instanceof HTMLInputElement) || !box.hasAttribute("data-remove-row")) return;
    var row = box.closest("[data-row]");
    if (row) row.classList.toggle("is-removed", box.checked);
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail && event.detail.target instanceof Element) showAddButtons(event.detail.target);
  });

  showAddButtons(document);
})();
