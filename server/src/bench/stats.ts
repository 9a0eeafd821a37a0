/** Small statistics helpers for the bench (pure). */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (s[lo] as number) + ((s[hi] as number) - (s[lo] as number)) * (pos - lo);
}

export interface Summary {
  n: number;
  median: number;
  p90: number;
  max: number;
}

export function summarise(values: readonly number[]): Summary {
  return { n: values.length, median: quantile(values, 0.5), p90: quantile(values, 0.9), max: values.length ? Math.max(...values) : NaN };
}

export function round(v: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
