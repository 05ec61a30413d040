// Module Web Worker that fingerprints media off the page's main thread, so the
// page stays responsive while a phone hashes large photos and videos. Nothing
// here touches the network: images and files stay on the device, and only
// the resulting hashes go back to the page.
//
// Start with: new Worker(new URL('./fingerprint-worker.js', import.meta.url), {type: 'module'})
//
// Requests (postMessage):
//   {id, kind: 'image', imageData}      imageData: ImageData or {data, width, height}
//     -> {id, hash, quality}             PDQ hash (64 hex chars) and quality 0..100
//   {id, kind: 'file', buffer}          buffer: ArrayBuffer (or typed array) of the file
//   {id, kind: 'file', file}            file: a File/Blob; read in slices so large
//                                       videos need not be in memory at once
//     -> {id, md5}                       MD5 of the bytes, 32 hex chars
// Any failure answers {id, error: message}. `id` is echoed so the page can
// match answers to requests sent concurrently.

import { pdqFromImageData } from './pdq.js';
import { MD5, md5Hex } from './md5.js';

// Slice size when hashing a Blob: big enough to amortise the async reads,
// small enough not to hold much of a video in memory.
const BLOB_SLICE_BYTES = 4 * 1024 * 1024;

async function md5OfBlob(blob) {
  const md5 = new MD5();
  for (let start = 0; start < blob.size; start += BLOB_SLICE_BYTES) {
    md5.update(await blob.slice(start, start + BLOB_SLICE_BYTES).arrayBuffer());
  }
  return md5.digest();
}

async function handle(message) {
  switch (message.kind) {
    case 'image': {
      const { hash, quality } = pdqFromImageData(message.imageData);
      return { hash, quality };
    }
    case 'file': {
      if (message.buffer !== undefined) return { md5: md5Hex(message.buffer) };
      if (message.file instanceof Blob) return { md5: await md5OfBlob(message.file) };
      throw new TypeError("'file' request needs a buffer or a file");
    }
    default:
      throw new TypeError(`unknown request kind: ${String(message.kind)}`);
  }
}

self.addEventListener('message', async (event) => {
  const message = event.data || {};
  const id = message.id;
  try {
    const result = await handle(message);
    self.postMessage({ id, ...result });
  } catch (err) {
    self.postMessage({ id, error: err && err.message ? err.message : String(err) });
  }
});
