// MD5 (RFC 1321) of file bytes, computed in the browser so that an exact-copy
// fingerprint can be sent without uploading the file. MD5 is not used for
// security here, only as the exact-match identifier platforms exchange.
//
// No dependencies. Incremental: `new MD5()`, `.update(bytes)` any number of
// times (so large videos can be read in slices), then `.digest()` for hex.

// Per-step left-rotation amounts, four per round.
const SHIFTS = [
  7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
  5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
  4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
  6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
];

// K[i] = floor(2^32 * |sin(i + 1)|), as the RFC defines it.
const K = new Int32Array(64);
for (let i = 0; i < 64; i++) K[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 0x100000000) | 0;

// Which message word each step reads, per the RFC's four rounds.
const WORD_INDEX = new Uint8Array(64);
for (let i = 0; i < 64; i++) {
  if (i < 16) WORD_INDEX[i] = i;
  else if (i < 32) WORD_INDEX[i] = (5 * i + 1) % 16;
  else if (i < 48) WORD_INDEX[i] = (3 * i + 5) % 16;
  else WORD_INDEX[i] = (7 * i) % 16;
}

const BLOCK_BYTES = 64;

// Accept ArrayBuffer or any ArrayBuffer view (Uint8Array, DataView...) and
// look at it as bytes without copying.
function asBytes(input) {
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  if (typeof SharedArrayBuffer !== 'undefined' && input instanceof SharedArrayBuffer) {
    return new Uint8Array(input);
  }
  throw new TypeError('md5: expected an ArrayBuffer or a typed array');
}

export class MD5 {
  constructor() {
    // Initial chaining values from the RFC.
    this._state = new Int32Array([0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476]);
    this._block = new Uint8Array(BLOCK_BYTES); // bytes waiting for a full block
    this._blockView = new DataView(this._block.buffer);
    this._blockUsed = 0;
    this._length = 0; // total bytes seen; a double is exact up to 2^53
    this._words = new Int32Array(16);
    this._finished = false;
  }

  /** Feed more bytes. Returns this, so calls can be chained. */
  update(input) {
    if (this._finished) throw new Error('md5: update() after digest()');
    const bytes = asBytes(input);
    this._length += bytes.length;
    let offset = 0;

    // Top up a partial block left over from the previous call.
    if (this._blockUsed > 0) {
      const take = Math.min(BLOCK_BYTES - this._blockUsed, bytes.length);
      this._block.set(bytes.subarray(0, take), this._blockUsed);
      this._blockUsed += take;
      offset = take;
      if (this._blockUsed < BLOCK_BYTES) return this;
      this._compress(this._blockView, 0);
      this._blockUsed = 0;
    }

    // Whole blocks straight from the input, no copying.
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (; offset + BLOCK_BYTES <= bytes.length; offset += BLOCK_BYTES) {
      this._compress(view, offset);
    }

    // Keep the tail for next time.
    this._block.set(bytes.subarray(offset), 0);
    this._blockUsed = bytes.length - offset;
    return this;
  }

  /** Finish and return the 32-character lowercase hex digest. */
  digest() {
    if (!this._finished) {
      this._pad();
      this._finished = true;
    }
    // The digest is the four state words, each in little-endian byte order.
    let hex = '';
    for (const word of this._state) {
      for (let b = 0; b < 4; b++) hex += ((word >>> (8 * b)) & 0xff).toString(16).padStart(2, '0');
    }
    return hex;
  }

  // RFC padding: a 1 bit, zeros up to 56 mod 64, then the message length in
  // bits as a 64-bit little-endian integer.
  _pad() {
    const bitLengthLow = (this._length % 0x20000000) * 8; // low 32 bits of length*8
    const bitLengthHigh = Math.floor(this._length / 0x20000000); // high 32 bits
    const block = this._block;
    block[this._blockUsed++] = 0x80;
    if (this._blockUsed > 56) {
      block.fill(0, this._blockUsed);
      this._compress(this._blockView, 0);
      this._blockUsed = 0;
    }
    block.fill(0, this._blockUsed, 56);
    this._blockView.setUint32(56, bitLengthLow >>> 0, true);
    this._blockView.setUint32(60, bitLengthHigh >>> 0, true);
    this._compress(this._blockView, 0);
    this._blockUsed = 0;
  }

  // One 64-byte block through the four rounds. Int32 arithmetic with `| 0`
  // keeps everything modulo 2^32 as MD5 requires.
  _compress(view, offset) {
    const x = this._words;
    for (let i = 0; i < 16; i++) x[i] = view.getInt32(offset + i * 4, true);
    const s = this._state;
    let a = s[0];
    let b = s[1];
    let c = s[2];
    let d = s[3];
    for (let i = 0; i < 64; i++) {
      let f;
      if (i < 16) f = (b & c) | (~b & d);
      else if (i < 32) f = (d & b) | (~d & c);
      else if (i < 48) f = b ^ c ^ d;
      else f = c ^ (b | ~d);
      const sum = (a + f + K[i] + x[WORD_INDEX[i]]) | 0;
      const shift = SHIFTS[i];
      a = d;
      d = c;
      c = b;
      b = (b + ((sum << shift) | (sum >>> (32 - shift)))) | 0;
    }
    s[0] = (s[0] + a) | 0;
    s[1] = (s[1] + b) | 0;
    s[2] = (s[2] + c) | 0;
    s[3] = (s[3] + d) | 0;
  }
}

/** MD5 of a whole ArrayBuffer (or typed array) as 32 lowercase hex chars. */
export function md5Hex(arrayBuffer) {
  return new MD5().update(arrayBuffer).digest();
}
