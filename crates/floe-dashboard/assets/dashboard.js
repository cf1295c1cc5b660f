// Floe dashboard: enhances the server-rendered pages. Without this script every page still
// reads (the network page is a snapshot); with it the live part is fetched again every few
// seconds, the countdown ticks and uploads show their progress.
"use strict";

(function () {
  function words(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
  }

  function tickCountdowns() {
    var now = Date.now();
    document.querySelectorAll(".countdown[data-until]").forEach(function (el) {
      var left = Number(el.getAttribute("data-until")) - now;
      el.textContent = left > 0 ? words(left) : "now (waiting for the ledger's clock)";
    });
  }

  // The live part: one request at a time, slower after failures, paused while hidden.
  function startLive(live) {
    var src = live.getAttribute("data-src");
    var base = Math.max(1000, Number(live.getAttribute("data-interval")) || 2000);
    var delay = base;
    var status = document.querySelector(".updated");
    function schedule() { setTimeout(refresh, delay); }
    function refresh() {
      if (document.hidden) { schedule(); return; }
      fetch(src, { cache: "no-store", headers: { Accept: "text/html" } })
        .then(function (r) {
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.text();
        })
        .then(function (html) {
          live.innerHTML = html;
          live.setAttribute("data-refreshed", String(Date.now()));
          if (status) status.textContent = "Updated " + new Date().toISOString().replace("T", " ").slice(0, 19) + " UTC";
          delay = base;
          tickCountdowns();
        })
        .catch(function (e) {
          delay = Math.min(delay * 2, 30000);
          if (status) status.textContent = "Cannot reach the server (" + e.message + "); retrying in " + words(delay);
        })
        .then(schedule);
    }
    schedule();
  }

  function blobIdOf(answer) {
    if (answer.newlyCreated) return answer.newlyCreated.blobObject.blobId;
    if (answer.alreadyCertified) return answer.alreadyCertified.blobId;
    return null;
  }

  function startUpload(form) {
    var file = form.querySelector("#file");
    var bar = form.querySelector("#upload-progress");
    var percent = form.querySelector("#upload-percent");
    var result = form.querySelector("#upload-result");
    var button = form.querySelector("#upload-button");
    var max = Number(form.getAttribute("data-max"));
    function show(text, cls) {
      result.textContent = text;
      result.className = cls || "";
    }
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var f = file.files[0];
      if (!f) { show("Choose a file first.", "bad"); return; }
      if (max && f.size > max) { show("The file is larger than this server takes (" + max + " bytes).", "bad"); return; }
      var epochs = form.querySelector("#epochs").value || "1";
      var url = form.getAttribute("action") + "?epochs=" + encodeURIComponent(epochs);
      if (form.querySelector("#permanent").checked) url += "&permanent=true";
      var xhr = new XMLHttpRequest();
      xhr.open("PUT", url);
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.upload.onprogress = function (e) {
        if (!e.lengthComputable) return;
        var p = Math.round((e.loaded / e.total) * 100);
        bar.value = p;
        bar.textContent = p + " %";
        percent.textContent = p + " % sent";
      };
      xhr.upload.onload = function () {
        bar.value = 100;
        percent.textContent = "100 % sent; the network is certifying it…";
      };
      xhr.onload = function () {
        button.disabled = false;
        var answer = null;
        try { answer = JSON.parse(xhr.responseText); } catch (e) { answer = null; }
        var id = answer && xhr.status < 300 ? blobIdOf(answer) : null;
        if (!id) {
          var why = answer && answer.error ? answer.error.message : xhr.statusText;
          show("The upload failed: HTTP " + xhr.status + " " + why, "bad");
          return;
        }
        result.textContent = "";
        result.className = "ok";
        var p = document.createElement("p");
        p.appendChild(document.createTextNode(answer.newlyCreated ? "Stored and certified: " : "Already certified: "));
        var a = document.createElement("a");
        a.href = form.getAttribute("data-blob-page") + encodeURIComponent(id);
        a.id = "uploaded-blob";
        var code = document.createElement("code");
        code.id = "uploaded-blob-id";
        code.textContent = id;
        a.appendChild(code);
        p.appendChild(a);
        result.appendChild(p);
        percent.textContent = "done";
      };
      xhr.onerror = function () {
        button.disabled = false;
        show("The upload failed: the server could not be reached.", "bad");
      };
      button.disabled = true;
      show("Uploading…");
      xhr.send(f);
    });
  }

  document.documentElement.classList.add("js");
  tickCountdowns();
  setInterval(tickCountdowns, 1000);
  var live = document.getElementById("live");
  if (live) startLive(live);
  var form = document.getElementById("upload");
  if (form) startUpload(form);
})();
