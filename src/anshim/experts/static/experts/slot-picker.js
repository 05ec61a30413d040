// The booking form's slot picker. The server lists the expert's free start times for every
// duration (#slot-data); this shows those of the chosen duration and, on a click, fills in the
// form's date and start time. The server still checks every booking: this only helps to pick.
(() => {
  "use strict";
  const picker = document.querySelector("[data-slot-picker]");
  const dataEl = document.getElementById("slot-data");
  if (!picker || !dataEl) return;
  const data = JSON.parse(dataEl.textContent);
  const list = picker.querySelector("[data-slot-list]");
  const status = picker.querySelector("[data-slot-status]");
  const emptyText = document.getElementById("slot-empty-text").content.textContent;
  const chosenText = document.getElementById("slot-chosen-text").content.textContent;
  const form = picker.parentElement.querySelector("form[method=post]");
  const date = form.querySelector("[name=date]");
  const time = form.querySelector("[name=time]");
  const duration = form.querySelector("[name=duration]");
  const weekday = new Intl.DateTimeFormat(document.documentElement.lang || undefined,
    { weekday: "short", timeZone: "UTC" });

  function mark() {
    for (const b of list.querySelectorAll("button.slot")) {
      const on = b.dataset.date === date.value && b.dataset.time === (time.value || "").slice(0, 5);
      b.setAttribute("aria-pressed", on ? "true" : "false");
    }
  }

  function render() {
    const days = data[duration.value] || [];
    list.replaceChildren();
    if (!days.length) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = emptyText;
      list.append(p);
      return;
    }
    for (const day of days) {
      const box = document.createElement("div");
      box.className = "slot-day";
      const h = document.createElement("h3");
      h.textContent = `${day.date} (${weekday.format(new Date(`${day.date}T00:00:00Z`))})`;
      const times = document.createElement("div");
      times.className = "slot-times";
      for (const t of day.times) {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "slot";
        b.dataset.date = day.date;
        b.dataset.time = t;
        b.textContent = t;
        times.append(b);
      }
      box.append(h, times);
      list.append(box);
    }
    mark();
  }

  list.addEventListener("click", (event) => {
    const b = event.target.closest("button.slot");
    if (!b) return;
    date.value = b.dataset.date;
    time.value = b.dataset.time;
    mark();
    status.textContent = `${chosenText} ${b.dataset.date} ${b.dataset.time}`;
  });
  // The meeting place matters only in person: hidden for video and phone (the server drops
  // it there anyway), so nobody types an address that is not needed.
  const mode = form.querySelector("[name=mode]");
  const place = form.querySelector("[name=location]");
  const placeBox = place && place.closest("div");
  function showPlace() {
    if (placeBox) placeBox.hidden = mode.value !== "in_person";
  }
  if (mode) mode.addEventListener("change", showPlace);
  showPlace();
  duration.addEventListener("change", render);
  date.addEventListener("change", mark);
  time.addEventListener("change", mark);
  render();
})();
