// PDQ perceptual image hash (Meta/ThreatExchange), computed in the victim's
// own browser so that only the 256-bit hash ever leaves the device.
//
// This is an independent JavaScript implementation of the algorithm described
// in Meta's "pdqhash-2017-10-09" document and its C++ reference
// (pdq/cpp/hashing/pdqhashing.cpp, pdq/cpp/downscaling/downscaling.cpp).
// Each step below mirrors the reference's arithmetic (truncations, window
// sizes, median choice, bit order) so hashes agree with the server's within a
// few bits; the remaining differences come from image decoders and from our
// use of 64-bit floats where the reference uses 32-bit ones.
//
// No dependencies; usable from a page or a (module) Web Worker.

// Rec. 601 luma weights, as in the reference.
const LUMA_FROM_R = 0.299;
const LUMA_FROM_G = 0.587;
const LUMA_FROM_B = 0.114;

// The reference refuses to hash anything smaller than this (all-zero hash,
// quality 0), because a 64x64 downsample of a tinier image means nothing.
const MIN_HASHABLE_DIM = 5;

// The image is blurred and decimated to 64x64, whose low 16x16 DCT
// frequencies give the 256 bits.
const DOWNSAMPLE_DIM = 64;
const DCT_DIM = 16;

// Two X/Y passes of 1-D box filters approximate a 2-D tent filter
// (W. Jarosz, "Fast Image Convolutions", 2001).
const JAROSZ_XY_PASSES = 2;

// ----------------------------------------------------------------
// 16x64 DCT-II matrix, row-major: only rows 1..16 of the full 64-point DCT
// are needed, since PDQ keeps frequencies (1..16)x(1..16) and drops DC.
const DCT_MATRIX = buildDctMatrix();

function buildDctMatrix() {
  const n = DOWNSAMPLE_DIM;
  const scale = Math.sqrt(2 / n);
  const matrix = new Float64Array(DCT_DIM * n);
  for (let i = 0; i < DCT_DIM; i++) {
    for (let j = 0; j < n; j++) {
      matrix[i * n + j] = scale * Math.cos((Math.PI / 2 / n) * (i + 1) * (2 * j + 1));
    }
  }
  return matrix;
}

// ----------------------------------------------------------------
// RGBA bytes (canvas ImageData layout) to row-major luma.
// Alpha is ignored, like Pillow's convert('RGB') on the server: a canvas
// already gives fully transparent pixels as black, which we cannot undo.
function lumaFromRgba(data, width, height) {
  const count = width * height;
  const luma = new Float64Array(count);
  for (let p = 0, q = 0; p < count; p++, q += 4) {
    luma[p] = LUMA_FROM_R * data[q] + LUMA_FROM_G * data[q + 1] + LUMA_FROM_B * data[q + 2];
  }
  return luma;
}

// ----------------------------------------------------------------
// Box-filter window per pass: a downsampled pixel covers oldDim/newDim input
// pixels, and the two passes each contribute half of that, hence 2*newDim
// (rounded up), exactly as the reference's computeJaroszFilterWindowSize.
export function jaroszWindowSize(oldDim, newDim) {
  return Math.floor((oldDim + 2 * newDim - 1) / (2 * newDim));
}

// One 1-D box filter (running mean) over `length` samples spaced `stride`
// apart. The window is centred, and shrinks at both edges rather than
// padding, in the same four phases as the reference's box1DFloat so that the
// edge pixels get the same weights.
function box1D(input, output, start, length, stride, windowSize) {
  const half = Math.floor((windowSize + 2) / 2); // 7 -> 4, 8 -> 5
  const phase1 = half - 1; // accumulate only
  const phase2 = windowSize - half + 1; // grow window, write
  const phase3 = length - windowSize; // slide full window, write
  const phase4 = half - 1; // shrink window, write

  let left = start; // next sample to subtract
  let right = start; // next sample to add
  let out = start;
  let sum = 0;
  let count = 0;

  for (let i = 0; i < phase1; i++) {
    sum += input[right];
    count++;
    right += stride;
  }
  for (let i = 0; i < phase2; i++) {
    sum += input[right];
    count++;
    output[out] = sum / count;
    right += stride;
    out += stride;
  }
  for (let i = 0; i < phase3; i++) {
    sum += input[right];
    sum -= input[left];
    output[out] = sum / count;
    left += stride;
    right += stride;
    out += stride;
  }
  for (let i = 0; i < phase4; i++) {
    sum -= input[left];
    count--;
    output[out] = sum / count;
    left += stride;
    out += stride;
  }
}

// The same filter down every column at once: walking whole rows keeps memory
// access sequential (a column-by-column walk is several times slower on large
// photos). Per column, the additions and subtractions happen in the same
// order as in box1D, so the results are identical.
function boxAlongColumns(input, output, rows, cols, windowSize) {
  const half = Math.floor((windowSize + 2) / 2);
  const phase1 = half - 1;
  const phase2 = windowSize - half + 1;
  const phase3 = rows - windowSize;
  const phase4 = half - 1;

  const sums = new Float64Array(cols);
  let left = 0; // offset of the next row to subtract
  let right = 0; // offset of the next row to add
  let out = 0;
  let count = 0;

  for (let i = 0; i < phase1; i++, right += cols) {
    for (let j = 0; j < cols; j++) sums[j] += input[right + j];
    count++;
  }
  for (let i = 0; i < phase2; i++, right += cols, out += cols) {
    count++;
    for (let j = 0; j < cols; j++) {
      sums[j] += input[right + j];
      output[out + j] = sums[j] / count;
    }
  }
  for (let i = 0; i < phase3; i++, left += cols, right += cols, out += cols) {
    for (let j = 0; j < cols; j++) {
      sums[j] = sums[j] + input[right + j] - input[left + j];
      output[out + j] = sums[j] / count;
    }
  }
  for (let i = 0; i < phase4; i++, left += cols, out += cols) {
    count--;
    for (let j = 0; j < cols; j++) {
      sums[j] -= input[left + j];
      output[out + j] = sums[j] / count;
    }
  }
}

// Blur in place (result ends in buffer1; buffer2 is scratch), alternating
// along rows and along columns.
function jaroszFilter(buffer1, buffer2, rows, cols, windowAlongRows, windowAlongCols) {
  for (let pass = 0; pass < JAROSZ_XY_PASSES; pass++) {
    for (let i = 0; i < rows; i++) {
      box1D(buffer1, buffer2, i * cols, cols, 1, windowAlongRows);
    }
    boxAlongColumns(buffer2, buffer1, rows, cols, windowAlongCols);
  }
}

// Pick the blurred pixel nearest each output cell's centre (not its corner).
function decimate(input, rows, cols, outRows, outCols) {
  const out = new Float64Array(outRows * outCols);
  for (let oi = 0; oi < outRows; oi++) {
    const ii = Math.trunc(((oi + 0.5) * rows) / outRows);
    for (let oj = 0; oj < outCols; oj++) {
      const ij = Math.trunc(((oj + 0.5) * cols) / outCols);
      out[oi * outCols + oj] = input[ii * cols + ij];
    }
  }
  return out;
}

// Full-size luma to the 64x64 image PDQ works on. Note: the luma buffer is
// overwritten (blurred in place) to avoid a third full-size allocation.
function downsampleTo64(luma, rows, cols) {
  if (rows === DOWNSAMPLE_DIM && cols === DOWNSAMPLE_DIM) {
    // The reference skips the blur for input that is already 64x64
    // (pre-downscaled video frames); do the same to stay comparable.
    return Float64Array.from(luma);
  }
  const scratch = new Float64Array(rows * cols);
  jaroszFilter(
    luma,
    scratch,
    rows,
    cols,
    jaroszWindowSize(cols, DOWNSAMPLE_DIM),
    jaroszWindowSize(rows, DOWNSAMPLE_DIM),
  );
  return decimate(luma, rows, cols, DOWNSAMPLE_DIM, DOWNSAMPLE_DIM);
}

// ----------------------------------------------------------------
// Quality 0..100: how much significant gradient the 64x64 image has. Flat or
// nearly blank images score low and their hashes are unreliable. The per-pair
// truncation to an integer is part of the heuristic (small gradients count
// as zero), so keep it.
function qualityMetric(buf64) {
  const n = DOWNSAMPLE_DIM;
  let gradientSum = 0;
  for (let i = 0; i < n - 1; i++) {
    for (let j = 0; j < n; j++) {
      gradientSum += Math.abs(Math.trunc(((buf64[i * n + j] - buf64[(i + 1) * n + j]) * 100) / 255));
    }
  }
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n - 1; j++) {
      gradientSum += Math.abs(Math.trunc(((buf64[i * n + j] - buf64[i * n + j + 1]) * 100) / 255));
    }
  }
  return Math.min(100, Math.trunc(gradientSum / 90));
}

// ----------------------------------------------------------------
// B = D A D^T, with D the 16x64 DCT matrix: the 16x16 lowest non-DC
// frequencies. Computing only these is cheaper than a full fast DCT.
function dct64To16(buf64) {
  const n = DOWNSAMPLE_DIM;
  const m = DCT_DIM;
  const D = DCT_MATRIX;
  const T = new Float64Array(m * n); // T = D A
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let k = 0; k < n; k++) sum += D[i * n + k] * buf64[k * n + j];
      T[i * n + j] = sum;
    }
  }
  const B = new Float64Array(m * m); // B = T D^T
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) {
      let sum = 0;
      for (let k = 0; k < n; k++) sum += T[i * n + k] * D[j * n + k];
      B[i * m + j] = sum;
    }
  }
  return B;
}

// ----------------------------------------------------------------
// The reference thresholds at Torben's median, which for 256 values is the
// lower median (the 128th smallest); bits are set where a coefficient is
// strictly greater, so about half the bits are 1.
function lowerMedian(values) {
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

// Hex exactly as Meta's Hash256::format prints it: bit k = i*16+j (for
// coefficient row i, column j) lives in 16-bit word i at bit j, and the
// words are printed from 15 down to 0, four hex digits each.
function bitsToHex(dct16) {
  const median = lowerMedian(dct16);
  let hex = '';
  for (let word = DCT_DIM - 1; word >= 0; word--) {
    let value = 0;
    for (let bit = 0; bit < DCT_DIM; bit++) {
      if (dct16[word * DCT_DIM + bit] > median) value |= 1 << bit;
    }
    hex += value.toString(16).padStart(4, '0');
  }
  return hex;
}

// ----------------------------------------------------------------
// The eight dihedral transforms (rotations/flips) of the image, done on the
// DCT coefficients instead of the pixels: a flip negates odd frequencies and
// a transpose swaps the axes. Sign tables as in the reference.
const DIHEDRAL = {
  original: { transpose: false, sign: () => 1 },
  rotate90: { transpose: true, sign: (i, j) => (j & 1 ? 1 : -1) },
  rotate180: { transpose: false, sign: (i, j) => ((i + j) & 1 ? -1 : 1) },
  rotate270: { transpose: true, sign: (i) => (i & 1 ? 1 : -1) },
  flipX: { transpose: false, sign: (i) => (i & 1 ? 1 : -1) },
  flipY: { transpose: false, sign: (i, j) => (j & 1 ? 1 : -1) },
  flipPlus1: { transpose: true, sign: () => 1 },
  flipMinus1: { transpose: true, sign: (i, j) => ((i + j) & 1 ? -1 : 1) },
};

function transformDct(dct16, { transpose, sign }) {
  const m = DCT_DIM;
  const out = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) {
      const target = transpose ? j * m + i : i * m + j;
      out[target] = sign(i, j) * dct16[i * m + j];
    }
  }
  return out;
}

// ----------------------------------------------------------------
// Shared front half: image to (16x16 DCT, quality), or null when too small.
function dctAndQuality(imageData) {
  const { data, width, height } = checkImageData(imageData);
  if (width < MIN_HASHABLE_DIM || height < MIN_HASHABLE_DIM) return null;
  const luma = lumaFromRgba(data, width, height);
  const buf64 = downsampleTo64(luma, height, width);
  return { dct16: dct64To16(buf64), quality: qualityMetric(buf64) };
}

function checkImageData(imageData) {
  const { data, width, height } = imageData || {};
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 0 || height < 0) {
    throw new TypeError('pdq: imageData needs integer width and height');
  }
  if (!data || typeof data.length !== 'number' || data.length < width * height * 4) {
    throw new TypeError('pdq: imageData.data must hold width*height RGBA bytes');
  }
  return { data, width, height };
}

const ZERO_HASH = '0'.repeat(64);

/**
 * PDQ hash of an ImageData (or any {data: RGBA bytes, width, height}).
 * Returns {hash: 64 lowercase hex chars in Meta's order, quality: 0..100}.
 * Images under 5 pixels on a side give the all-zero hash with quality 0,
 * like the reference.
 */
export function pdqFromImageData(imageData) {
  const result = dctAndQuality(imageData);
  if (result === null) return { hash: ZERO_HASH, quality: 0 };
  return { hash: bitsToHex(result.dct16), quality: result.quality };
}

/**
 * PDQ hashes of the image's eight rotations/flips in one go (for matching
 * against copies that were rotated or mirrored). Returns {hashes: {original,
 * rotate90, rotate180, rotate270, flipX, flipY, flipPlus1, flipMinus1},
 * quality}.
 */
export function pdqDihedralFromImageData(imageData) {
  const result = dctAndQuality(imageData);
  const hashes = {};
  for (const [name, transform] of Object.entries(DIHEDRAL)) {
    hashes[name] = result === null ? ZERO_HASH : bitsToHex(transformDct(result.dct16, transform));
  }
  return { hashes, quality: result === null ? 0 : result.quality };
}

/** Number of differing bits between two 64-hex-character PDQ hashes. */
export function pdqHammingDistance(hexA, hexB) {
  if (hexA.length !== 64 || hexB.length !== 64) {
    throw new TypeError('pdq: hashes must be 64 hex characters');
  }
  let distance = 0;
  for (let i = 0; i < 64; i += 8) {
    let x = (parseInt(hexA.slice(i, i + 8), 16) ^ parseInt(hexB.slice(i, i + 8), 16)) >>> 0;
    while (x) {
      x &= x - 1;
      distance++;
    }
  }
  return distance;
}
