// The on-device fingerprinting page. The victim's photos and videos never leave the browser:
// they are decoded here, hashed in a Web Worker (fingerprint-worker.js: PDQ and MD5), and only
// the hashes are sent, as JSON, to the register URL. File names are not sent either.
//
//   image: createImageBitmap (no colour conversion, EXIF orientation applied, as the server's
//          decoder does) -> canvas, longest side <= 1024 px -> PDQ; MD5 of the file bytes.
//   video: a hidden <video> from an object URL, one frame a second (seek, draw, PDQ, as vPDQ
//          does with one second per hash); MD5 of the file bytes.
//
// Request body: {consent: true, items: [{kind: 'image', md5, pdq, quality}
//                                       | {kind: 'video', md5, frames: [{pdq, quality, timestamp}]}]}

const MAX_SIDE = 1024; // keeps the browser's PDQ within a few bits of the server's
const SECONDS_PER_HASH = 1;

const form = document.getElementById('fp-form');

if (form) {
  const strings = JSON.parse(document.getElementById('fp-strings').textContent);
  const input = document.getElementById('fp-files');
  const list = document.getElementById('fp-list');
  const consent = document.getElementById('fp-consent');
  const submit = document.getElementById('fp-submit');
  const statusLine = document.getElementById('fp-status');
  const errorLine = document.getElementById('fp-error');
  const progressBox = document.getElementById('fp-progress-box');
  const progress = document.getElementById('fp-progress');
  const maxItems = Number(form.dataset.maxItems) || 50;
  const maxFrames = Number(form.dataset.maxFrames) || 3600;

  const format = (template, values) =>
    template.replace(/%\((\w+)\)s/g, (_, key) => String(values[key]));

  // ---------------------------------------------------------------- worker

  const worker = new Worker(form.dataset.workerUrl, { type: 'module' });
  const pending = new Map();
  let nextId = 1;
  worker.addEventListener('message', (event) => {
    const waiting = pending.get(event.data.id);
    if (!waiting) return;
    pending.delete(event.data.id);
    if (event.data.error) waiting.reject(new Error(event.data.error));
    else waiting.resolve(event.data);
  });
  worker.addEventListener('error', (event) => {
    for (const waiting of pending.values()) waiting.reject(new Error(event.message || 'worker'));
    pending.clear();
  });

  function ask(message, transfer = []) {
    return new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      worker.postMessage({ ...message, id }, transfer);
    });
  }

  function pixels(source, width, height) {
    const scale = Math.min(1, MAX_SIDE / Math.max(width, height));
    const w = Math.max(1, Math.round(width * scale));
    const h = Math.max(1, Math.round(height * scale));
    const canvas = document.createElement('canvas');
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(source, 0, 0, w, h);
    return ctx.getImageData(0, 0, w, h);
  }

  async function pdqOfPixels(imageData) {
    const { hash, quality } = await ask({ kind: 'image', imageData }, [imageData.data.buffer]);
    return { pdq: hash, quality };
  }

  // ---------------------------------------------------------------- media

  async function hashImage(file) {
    const bitmap = await createImageBitmap(file, {
      colorSpaceConversion: 'none',
      imageOrientation: 'from-image',
    });
    let imageData;
    try {
      imageData = pixels(bitmap, bitmap.width, bitmap.height);
    } finally {
      bitmap.close(); // the pixels are in imageData now
    }
    const [{ pdq, quality }, { md5 }] = await Promise.all([
      pdqOfPixels(imageData),
      ask({ kind: 'file', file }),
    ]);
    return { kind: 'image', md5, pdq, quality };
  }

  function waitFor(target, okEvent) {
    return new Promise((resolve, reject) => {
      const ok = () => { cleanup(); resolve(); };
      const bad = () => { cleanup(); reject(new Error('media error')); };
      const cleanup = () => {
        target.removeEventListener(okEvent, ok);
        target.removeEventListener('error', bad);
      };
      target.addEventListener(okEvent, ok);
      target.addEventListener('error', bad);
    });
  }

  async function hashVideo(file, url, onProgress, thumbnail) {
    const video = document.createElement('video');
    video.muted = true;
    video.playsInline = true;
    video.preload = 'auto';
    const loaded = waitFor(video, 'loadeddata');
    video.src = url;
    await loaded;
    const duration = video.duration;
    if (!Number.isFinite(duration) || duration <= 0 || !video.videoWidth) {
      throw new Error('no video frames');
    }
    const md5Promise = ask({ kind: 'file', file });
    const frames = [];
    for (let t = 0; t < duration && frames.length < maxFrames; t += SECONDS_PER_HASH) {
      if (t > 0) {
        const seeked = waitFor(video, 'seeked');
        video.currentTime = t;
        await seeked;
      }
      if (t === 0) thumbnail(video);
      const { pdq, quality } = await pdqOfPixels(pixels(video, video.videoWidth, video.videoHeight));
      frames.push({ pdq, quality, timestamp: t });
      onProgress(Math.min(1, (t + SECONDS_PER_HASH) / duration));
    }
    video.removeAttribute('src');
    video.load();
    const { md5 } = await md5Promise;
    return { kind: 'video', md5, frames, seconds: Math.round(duration) };
  }

  // ---------------------------------------------------------------- page state

  let items = []; // {row, result, error, url, done}

  function setProgress() {
    const total = items.length;
    const share = items.reduce((sum, item) => sum + (item.done ? 1 : item.fraction || 0), 0);
    progressBox.hidden = total === 0;
    progress.value = total ? Math.round((100 * share) / total) : 0;
    updateSubmit();
  }

  function updateSubmit() {
    const busy = items.some((item) => !item.done);
    const ready = items.some((item) => item.result);
    // The consent box is part of the rule: the button stays off until it is ticked.
    submit.disabled = busy || !ready || !consent.checked;
  }

  function clearItems() {
    for (const item of items) URL.revokeObjectURL(item.url);
    items = [];
    list.replaceChildren();
    setProgress();
  }

  function addRow(file, kind) {
    const row = document.createElement('li');
    row.className = 'fp-item';
    const label = document.createElement('span');
    label.className = 'fp-name';
    label.textContent = `${kind === 'video' ? strings.video : strings.image} · ${file.name}`;
    const state = document.createElement('span');
    state.className = 'fp-state';
    state.textContent = strings.working;
    row.append(label, state);
    list.append(row);
    return { row, state };
  }

  function showImageThumbnail(row, url) {
    const img = document.createElement('img');
    img.className = 'fp-thumb';
    img.alt = strings.preview;
    img.src = url; // a blob: URL; the picture is drawn from memory, nothing is fetched
    row.prepend(img);
  }

  function showVideoThumbnail(row, video) {
    const canvas = document.createElement('canvas');
    canvas.className = 'fp-thumb';
    canvas.setAttribute('role', 'img');
    canvas.setAttribute('aria-label', strings.preview);
    const scale = Math.min(1, 160 / Math.max(video.videoWidth, video.videoHeight));
    canvas.width = Math.max(1, Math.round(video.videoWidth * scale));
    canvas.height = Math.max(1, Math.round(video.videoHeight * scale));
    canvas.getContext('2d').drawImage(video, 0, 0, canvas.width, canvas.height);
    row.prepend(canvas);
  }

  // The withdrawal page labels each registered item with the same short id.
  // A page without the short_id string (the center's-device page) shows none.
  function shortId(pdqHex) {
    const id = String(pdqHex || '').slice(0, 8).toUpperCase();
    return strings.short_id && id ? ` · ${format(strings.short_id, { id })}` : '';
  }

  async function processFile(file) {
    const kind = file.type.startsWith('video/') ? 'video' : file.type.startsWith('image/') ? 'image' : '';
    const { row, state } = addRow(file, kind || 'image');
    const url = URL.createObjectURL(file);
    const item = { row, url, done: false, fraction: 0 };
    items.push(item);
    setProgress();
    try {
      if (!kind) throw new Error('unsupported');
      if (kind === 'image') {
        showImageThumbnail(row, url);
        item.result = await hashImage(file);
        state.textContent = `${strings.done}${shortId(item.result.pdq)}`;
      } else {
        item.result = await hashVideo(file, url, (fraction) => {
          item.fraction = fraction;
          setProgress();
        }, (video) => showVideoThumbnail(row, video));
        state.textContent = `${strings.done} · ${format(strings.seconds, { n: item.result.seconds })}${shortId(item.result.frames[0] && item.result.frames[0].pdq)}`;
      }
    } catch (err) {
      item.error = true;
      row.classList.add('fp-failed');
      state.textContent = err && err.message === 'unsupported' ? strings.unsupported : strings.failed;
    } finally {
      item.done = true;
      setProgress();
    }
  }

  input.addEventListener('change', async () => {
    errorLine.textContent = '';
    statusLine.textContent = '';
    const files = Array.from(input.files || []);
    if (files.length + items.length > maxItems) {
      errorLine.textContent = format(strings.too_many, { n: maxItems });
      input.value = '';
      return;
    }
    input.value = ''; // the files stay referenced by our list only
    // One at a time: a phone has little memory, and the worker is single-threaded anyway.
    for (const file of files) await processFile(file);
  });

  consent.addEventListener('change', () => { errorLine.textContent = ''; updateSubmit(); });

  function csrfToken() {
    const field = form.querySelector('input[name="csrfmiddlewaretoken"]');
    return field ? field.value : '';
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    errorLine.textContent = '';
    const ready = items.filter((item) => item.result);
    if (!ready.length) {
      errorLine.textContent = strings.none_ready;
      return;
    }
    if (!consent.checked) {
      errorLine.textContent = strings.consent;
      consent.focus();
      return;
    }
    const payload = {
      consent: true,
      items: ready.map(({ result }) => (result.kind === 'image'
        ? { kind: 'image', md5: result.md5, pdq: result.pdq, quality: result.quality }
        : { kind: 'video', md5: result.md5, frames: result.frames })),
    };
    submit.disabled = true;
    statusLine.textContent = strings.sending;
    try {
      const response = await fetch(form.dataset.registerUrl, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-CSRFToken': csrfToken() },
        body: JSON.stringify(payload),
      });
      let answer = {};
      try { answer = await response.json(); } catch { answer = {}; }
      if (!response.ok) {
        statusLine.textContent = '';
        errorLine.textContent = answer.message || strings.network;
        updateSubmit();
        return;
      }
      statusLine.textContent = format(strings.registered, { n: answer.registered });
      clearItems();
      consent.checked = false;
    } catch {
      statusLine.textContent = '';
      errorLine.textContent = strings.network;
      updateSubmit();
    }
  });
}
