// dossiersync status page: the page works without this file; it only saves clicks.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // choosing a dossier in the selector shows it at once
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () {
      select.form.submit();
    });
  });

  // while a sync runs, the page reloads every few seconds to show its progress, and
  // once more when it ends, to show its outcome; the notice that it started is dropped
  var seconds = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  if (seconds > 0) {
    window.setTimeout(function () {
      var url = new URL(window.location.href);
      url.searchParams.delete("notice");
      window.location.replace(url.toString());
    }, seconds * 1000);
  }
})();
