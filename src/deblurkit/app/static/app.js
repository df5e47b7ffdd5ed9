// deblurkit web page: choose/drop a photo, POST it to /api/deblur, show a before/after slider.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const fileInput = $("file"), drop = $("drop"), runBtn = $("run"), modelSel = $("model");
  const bar = $("bar"), statusEl = $("status"), progressBox = $("progress"), errorEl = $("error");
  const viewer = $("viewer"), before = $("before"), after = $("after"), afterWrap = $("after-wrap");
  const slider = $("slider"), handle = $("handle"), download = $("download"), info = $("info");
  let chosen = null, beforeUrl = null, afterUrl = null, models = [], limits = {};

  function showError(msg) { errorEl.textContent = msg; errorEl.hidden = !msg; }
  // After a failure nothing of the previous run may stay on screen: no "Deblurring…", no old result.
  function clearResult() {
    viewer.hidden = true; download.hidden = true; info.textContent = "";
    after.removeAttribute("src"); download.removeAttribute("href");
    if (afterUrl) { URL.revokeObjectURL(afterUrl); afterUrl = null; }
  }
  function failed(msg) {
    progressBox.hidden = true; statusEl.textContent = ""; bar.value = 0;
    clearResult(); showError(msg);
  }
  // RFC 6266: prefer filename* (UTF-8) over the ASCII fallback.
  function downloadName(disp) {
    const star = /filename\*=UTF-8''([^;]+)/i.exec(disp);
    if (star) { try { return decodeURIComponent(star[1]); } catch (e) { /* fall back */ } }
    const plain = /filename="([^"]+)"/.exec(disp);
    return plain ? plain[1] : "deblurred.png";
  }
  function setProgress(pct, text) {
    progressBox.hidden = false;
    if (pct === null) bar.removeAttribute("value"); else bar.value = pct;
    statusEl.textContent = text;
  }

  fetch("/api/models").then((r) => r.json()).then((data) => {
    models = data.models; limits = data.limits || {};
    const names = models.map((m) => m.name);
    if (!names.includes(data.default)) models.unshift({ name: data.default, description: "" });
    for (const m of models) {
      const opt = document.createElement("option");
      opt.value = m.name; opt.textContent = m.name + (m.name === data.default ? " (default)" : "");
      modelSel.appendChild(opt);
    }
    modelSel.value = data.default; describe();
  }).catch(() => showError("Could not load the model list."));

  function describe() {
    const m = models.find((x) => x.name === modelSel.value);
    $("model-desc").textContent = m ? m.description : "";
  }
  modelSel.addEventListener("change", describe);

  function choose(file) {
    if (!file) return;
    showError("");
    if (limits.max_upload_bytes && file.size > limits.max_upload_bytes) {
      showError(`${file.name} is ${(file.size / 1048576).toFixed(1)} MB; the limit is ${(limits.max_upload_bytes / 1048576).toFixed(0)} MB.`);
      return;
    }
    chosen = file;
    $("drop-text").textContent = `${file.name} (${(file.size / 1024).toFixed(0)} KB) — press Deblur`;
    runBtn.disabled = false;
    clearResult();
    if (beforeUrl) URL.revokeObjectURL(beforeUrl);
    beforeUrl = URL.createObjectURL(file);
  }
  fileInput.addEventListener("change", () => choose(fileInput.files[0]));
  ["dragenter", "dragover"].forEach((ev) => drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); }));
  ["dragleave", "drop"].forEach((ev) => drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
  drop.addEventListener("drop", (e) => choose(e.dataTransfer.files[0]));
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") fileInput.click(); });

  function setSplit(pct) {
    afterWrap.style.clipPath = `inset(0 0 0 ${pct}%)`;
    handle.style.left = pct + "%";
  }
  slider.addEventListener("input", () => setSplit(slider.value));
  // drag directly on the picture, too
  const cmp = $("compare");
  let dragging = false;
  const dragTo = (e) => {
    const r = cmp.getBoundingClientRect();
    const pct = Math.max(0, Math.min(100, ((e.clientX - r.left) / r.width) * 100));
    slider.value = pct; setSplit(pct);
  };
  cmp.addEventListener("pointerdown", (e) => { dragging = true; cmp.setPointerCapture(e.pointerId); dragTo(e); });
  cmp.addEventListener("pointermove", (e) => { if (dragging) dragTo(e); });
  cmp.addEventListener("pointerup", () => { dragging = false; });

  runBtn.addEventListener("click", () => {
    if (!chosen) return;
    showError(""); runBtn.disabled = true; download.hidden = true;
    const jobId = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random()).replace(/-/g, "");
    const form = new FormData();
    form.append("file", chosen, chosen.name);
    form.append("model", modelSel.value);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/deblur");
    xhr.responseType = "blob";
    xhr.setRequestHeader("X-Job-Id", jobId);
    const started = performance.now();
    let poll = null, finished = false;
    xhr.upload.onprogress = (e) => {
      if (finished) return;
      if (e.lengthComputable) setProgress(Math.round((100 * e.loaded) / e.total), `Uploading… ${Math.round((100 * e.loaded) / e.total)}%`);
    };
    xhr.upload.onload = () => {
      if (finished) return;  // the answer (e.g. an error) came before the upload event
      setProgress(null, "Deblurring…");
      poll = setInterval(() => {
        fetch(`/api/progress/${jobId}`).then((r) => r.json()).then((p) => {
          if (finished) return;
          const secs = ((performance.now() - started) / 1000).toFixed(0);
          if (p.total > 1) setProgress(Math.round((100 * p.done) / p.total), `Deblurring… ${p.done}/${p.total} tiles, ${secs} s`);
          else setProgress(null, `Deblurring… ${secs} s`);
        }).catch(() => {});
      }, 500);
    };
    const finish = () => { finished = true; if (poll) clearInterval(poll); runBtn.disabled = false; };
    xhr.onerror = () => { finish(); failed("Network error: the server could not be reached."); };
    xhr.onload = async () => {
      finish();
      if (xhr.status !== 200) {
        let msg = `Error ${xhr.status}`;
        try { msg = JSON.parse(await xhr.response.text()).error || msg; } catch (e) { /* not JSON */ }
        if (xhr.status === 503) msg += " (the server is busy; try again shortly)";
        failed(msg);
        return;
      }
      const secs = xhr.getResponseHeader("X-Deblur-Seconds");
      const disp = xhr.getResponseHeader("Content-Disposition") || "";
      if (afterUrl) URL.revokeObjectURL(afterUrl);
      afterUrl = URL.createObjectURL(xhr.response);
      before.src = beforeUrl; after.src = afterUrl;
      download.href = afterUrl; download.download = downloadName(disp); download.hidden = false;
      viewer.hidden = false; slider.value = 50; setSplit(50);
      setProgress(100, `Done in ${secs ? Number(secs).toFixed(2) : "?"} s`);
      after.onload = () => { info.textContent = `${after.naturalWidth}×${after.naturalHeight} · model ${xhr.getResponseHeader("X-Model")} · drag the slider to compare`; };
    };
    setProgress(0, "Uploading…");
    xhr.send(form);
  });
})();
