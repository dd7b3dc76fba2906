// Progressive enhancement of the overview: when a config changes (GET /v1/watch, SSE), load
// the page again. Without JavaScript, or where the stream is refused, the page works as is.
(function () {
  "use strict";
  if (!window.EventSource || !window.fetch) return;
  var main = document.querySelector("[data-served]");
  var shown = main ? main.getAttribute("data-served") : "";
  var source = new EventSource("/v1/watch");
  function reload() {
    source.close();
    window.location.reload();
  }
  // A publish between this page's rendering and the stream's opening sends no event: ask.
  source.addEventListener("open", function () {
    fetch("/v1/status", { headers: { Accept: "application/json" } })
      .then(function (reply) { return reply.json(); })
      .then(function (status) { if (status.revision && status.revision !== shown) reload(); })
      .catch(function () {});
  });
  source.addEventListener("config.changed", reload);
  source.addEventListener("resync", reload);
  // A refused stream (401, 403) is closed by the browser; a dropped one it opens again.
})();
