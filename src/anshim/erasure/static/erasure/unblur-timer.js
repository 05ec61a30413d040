// The unblurred picture's viewing time (reviewer exposure, issue 14). Counts the seconds the
// picture is on screen unblurred: the tab visible and the picture not blurred again. Reports
// the running total (it only grows; the server keeps the largest, so a repeated or late report
// never counts twice) every few seconds while shown, when the picture is blurred again, when
// the tab is hidden and when the page is left. fetch(keepalive) rather than sendBeacon: it
// can send the CSRF header, and is still sent while the page is being left.
(() => {
  "use strict";
  const box = document.getElementById("unblurred");
  const picture = document.getElementById("unblurred-picture");
  const button = document.getElementById("reblur");
  const note = document.getElementById("blurred-note");
  if (!box || !picture || !button) return;
  const url = box.dataset.reportUrl;
  const csrf = box.dataset.csrf;
  const every = Math.max(5, Number(box.dataset.reportEvery) || 15) * 1000;
  // past the most one viewing counts, the picture is blurred again by itself: no picture
  // stays open on an unattended screen (and the reports stop keeping the session alive)
  const most = (Number(box.dataset.maxSeconds) || 1800) * 1000;
  const blurText = button.textContent;
  const showText = button.dataset.showText;

  let blurred = false;
  let total = 0; // milliseconds counted before the current visible stretch
  let since = null; // when the current visible stretch began (performance.now())
  let reported = -1;

  const showing = () => !blurred && document.visibilityState === "visible";

  function elapsed() {
    return total + (since === null ? 0 : performance.now() - since);
  }

  function pause() {
    if (since !== null) {
      total += performance.now() - since;
      since = null;
    }
  }

  function resume() {
    if (since === null && showing()) since = performance.now();
  }

  function report() {
    const seconds = Math.round(elapsed() / 100) / 10;
    if (seconds <= reported) return;
    reported = seconds;
    const body = new URLSearchParams({ seconds: String(seconds) });
    fetch(url, {
      method: "POST", body, keepalive: true, credentials: "same-origin",
      headers: { "X-CSRFToken": csrf },
    }).catch(() => { reported = -1; }); // tried again at the next report
  }

  function setBlurred(on) {
    blurred = on;
    if (blurred) pause(); else resume();
    picture.classList.toggle("reblurred", blurred);
    if (note) note.hidden = !blurred;
    button.textContent = blurred ? showText : blurText;
    report();
  }

  button.addEventListener("click", () => setBlurred(!blurred));
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") resume(); else { pause(); report(); }
  });
  window.addEventListener("pagehide", () => { pause(); report(); });
  setInterval(() => {
    if (!showing()) return;
    if (elapsed() >= most) setBlurred(true); else report();
  }, every);

  // The clock starts when the picture is on screen (decoded), not when the script loads.
  if (picture.complete) resume(); else picture.addEventListener("load", resume, { once: true });
})();
