/**
 * The Sphinx mel filterbank (sphinxbase fe_sigproc.c `fe_build_melfilters`, float build): `count` triangular
 * filters spaced evenly on the mel scale (2595·log10(1 + f/700)) between `lowerHz` and `upperHz`, edges
 * rounded to DFT points, each normalised to unit area. Sphinx computes the edges in float32; so do we
 * (Math.fround), so that rounding to DFT points lands on the same bins.
 */
export interface MelFilterbankOptions {
  sampleRate: number;
  fftSize: number;
  count: number;
  lowerHz: number;
  upperHz: number;
}

export interface MelFilter {
  /** First power-spectrum bin the filter covers. */
  start: number;
  /** Weights for bins start, start+1, ... */
  weights: Float64Array;
}

const f32 = Math.fround;

function mel(hz: number): number {
  return f32(2595.0 * Math.log10(1.0 + hz / 700.0));
}

function melInv(m: number): number {
  return f32(700.0 * (Math.pow(10.0, m / 2595.0) - 1.0));
}

export function buildMelFilterbank(o: MelFilterbankOptions): MelFilter[] {
  const melMin = mel(o.lowerHz);
  const melMax = mel(o.upperHz);
  const melBw = f32((melMax - melMin) / (o.count + 1));
  const fftFreq = f32(o.sampleRate / o.fftSize);
  const nBins = o.fftSize / 2 + 1;
  const filters: MelFilter[] = [];
  for (let i = 0; i < o.count; i++) {
    const edges = [0, 1, 2].map((j) => {
      const hz = melInv(f32((i + j) * melBw + melMin));
      return f32(Math.trunc(hz / fftFreq + 0.5) * fftFreq);
    }) as [number, number, number];
    let start = -1;
    let width = 0;
    for (let j = 0; j < nBins; j++) {
      const hz = f32(j * fftFreq);
      if (hz < edges[0]) continue;
      if (hz > edges[2] || j === o.fftSize / 2) {
        width = j - start;
        break;
      }
      if (start === -1) start = j;
    }
    if (start < 0 || width <= 0) throw new RangeError(`mel filter ${i} is empty (${edges.join(', ')} Hz)`);
    const weights = new Float64Array(width);
    for (let j = 0; j < width; j++) {
      const hz = f32((start + j) * fftFreq);
      const area = 2 / (edges[2] - edges[0]);
      const lo = f32(f32((hz - edges[0]) / (edges[1] - edges[0])) * area);
      const hi = f32(f32((edges[2] - hz) / (edges[2] - edges[1])) * area);
      weights[j] = lo < hi ? lo : hi;
    }
    filters.push({ start, weights });
  }
  return filters;
}

/** Filter energies of a power spectrum. */
export function applyMelFilterbank(filters: readonly MelFilter[], power: Float64Array, out: Float64Array): void {
  for (let f = 0; f < filters.length; f++) {
    const { start, weights } = filters[f] as MelFilter;
    let s = 0;
    for (let j = 0; j < weights.length; j++) s += (power[start + j] as number) * (weights[j] as number);
    out[f] = s;
  }
}
