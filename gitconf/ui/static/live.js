// Progressive enhancement of the overview: when a config changes (GET /v1/watch, SSE), load
// the page again. Without JavaScript, or where the stream is refused, the page works as is.
(function () {
  "use strict";
  if (!window.EventSource) return;
  var source = new EventSource("/v1/watch");
  source.addEventListener("config.changed", function () {
    source.close();
    window.location.reload();
  });
  source.onerror = function () { source.close(); };
})();
