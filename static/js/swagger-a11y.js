/*
 * The API docs page: names for the controls that swagger-ui draws without one, so a screen reader can say
 * what each is (axe-core's select-name, label and button-name). swagger-ui draws and redraws the page with
 * React long after load, and offers no option for these names, so each control is named as it appears.
 */
(function () {
  "use strict";

  // The parameter's name, from the row swagger-ui draws for it.
  function nameParameterControls(root) {
    root.querySelectorAll("tr[data-param-name] select:not([aria-label]), tr[data-param-name] input:not([aria-label])")
      .forEach(function (control) {
        control.setAttribute("aria-label", control.closest("tr[data-param-name]").dataset.paramName);
      });
    root.querySelectorAll("textarea.body-param__text:not([aria-label])").forEach(function (area) {
      area.setAttribute("aria-label", "Request body");
    });
    // Icon-only copy buttons (the curl command, a response body).
    root.querySelectorAll(".copy-to-clipboard button:not([aria-label])").forEach(function (button) {
      button.setAttribute("aria-label", "Copy to clipboard");
    });
  }

  var ui = document.getElementById("swagger-ui");
  if (!ui) {
    return;
  }
  nameParameterControls(ui);
  new MutationObserver(function () {
    nameParameterControls(ui);
  }).observe(ui, { childList: true, subtree: true });
})();
