/**
 * Frames without a face (pure). A gap of at most `maxGapFrames` frames between two frames with a face
 * is filled by linear interpolation of every value and flagged `interpolated`; longer gaps, and gaps at
 * the start or end of the clip (nothing to interpolate towards), stay zero and are marked invalid.
 */
export interface GapResult {
  /** 1 where the frame may be used (face found, or interpolated). */
  valid: Uint8Array;
  interpolated: Uint8Array;
  validCount: number;
  interpolatedCount: number;
  /** Frames excluded because they lie in a long or edge gap. */
  excludedCount: number;
}

/**
 * Fills short gaps in place in each of `series` (row-major [N, width] arrays, one per width).
 * @param found 1 where the tracker found a face
 */
export function fillGaps(found: Uint8Array, series: ReadonlyArray<{ data: Float32Array; width: number }>, maxGapFrames: number): GapResult {
  const n = found.length;
  for (const s of series) if (s.data.length !== n * s.width) throw new RangeError('series length does not match the frame count');
  const valid = new Uint8Array(n);
  const interpolated = new Uint8Array(n);
  let i = 0;
  while (i < n) {
    if (found[i]) {
      valid[i] = 1;
      i++;
      continue;
    }
    let j = i;
    while (j < n && !found[j]) j++;
    // gap is [i, j)
    const len = j - i;
    if (i > 0 && j < n && len <= maxGapFrames) {
      const a = i - 1;
      const b = j;
      for (let k = i; k < j; k++) {
        const t = (k - a) / (b - a);
        for (const s of series) {
          for (let c = 0; c < s.width; c++) {
            const va = s.data[a * s.width + c] as number;
            const vb = s.data[b * s.width + c] as number;
            s.data[k * s.width + c] = va + (vb - va) * t;
          }
        }
        valid[k] = 1;
        interpolated[k] = 1;
      }
    }
    i = j;
  }
  let validCount = 0, interpolatedCount = 0;
  for (let k = 0; k < n; k++) {
    validCount += valid[k] as number;
    interpolatedCount += interpolated[k] as number;
  }
  return { valid, interpolated, validCount, interpolatedCount, excludedCount: n - validCount };
}

/** Train/test split: the last round(n × testFraction) frames are the test part. Half-open ranges. */
export function splitFrames(n: number, testFraction: number): { train: [number, number]; test: [number, number] } {
  const k = n - Math.round(n * testFraction);
  return { train: [0, k], test: [k, n] };
}
