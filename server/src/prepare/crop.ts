/**
 * One fixed square crop for a whole clip, from the tracked face boxes (pure).
 *
 * Each face box is the extent of the 478 landmarks (brow/forehead to chin). The head is that box grown
 * by HEAD_TOP × its height upward (hair), HEAD_SIDE × its width to each side (ears, hair); the crop must
 * contain the union of all heads over the clip, plus NECK × the median face height below the lowest chin
 * (neck and some shoulders, like the paper's portraits) and MARGIN × the median face height around.
 * The square is centred horizontally on the union, and any extra height goes mostly below the chin.
 *
 * Image borders: the crop is never padded. It slides to lie inside the frame; if it is larger than the
 * frame's shorter side, it is reduced to that side (`limited` is set; the head may then touch the border).
 */
export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export interface CropBox {
  x: number;
  y: number;
  size: number;
  /** True when the wanted square did not fit in the frame and was made smaller. */
  limited: boolean;
}

const CROP_PARAMS = { HEAD_TOP: 0.45, HEAD_SIDE: 0.18, NECK: 0.75, MARGIN: 0.12 } as const;

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/**
 * @param boxes face boxes in frame pixels (frames without a face left out)
 * @param width frame width in pixels, @param height frame height in pixels (after rotation)
 */
export function computeCrop(boxes: readonly Box[], width: number, height: number, p = CROP_PARAMS): CropBox {
  if (!(width >= 1 && height >= 1)) throw new RangeError(`bad frame size ${width}x${height}`);
  const good = boxes.filter((b) => [b.x0, b.y0, b.x1, b.y1].every(Number.isFinite) && b.x1 > b.x0 && b.y1 > b.y0);
  if (good.length === 0) throw new RangeError('no face boxes to place a crop on');
  const hMed = median(good.map((b) => b.y1 - b.y0));
  let left = Infinity, right = -Infinity, top = Infinity, chin = -Infinity;
  for (const b of good) {
    const w = b.x1 - b.x0;
    const h = b.y1 - b.y0;
    left = Math.min(left, b.x0 - p.HEAD_SIDE * w);
    right = Math.max(right, b.x1 + p.HEAD_SIDE * w);
    top = Math.min(top, b.y0 - p.HEAD_TOP * h);
    chin = Math.max(chin, b.y1);
  }
  const margin = p.MARGIN * hMed;
  const wantTop = top - margin;
  const wantBottom = chin + p.NECK * hMed;
  const wantW = right - left + 2 * margin;
  const wantH = wantBottom - wantTop;
  let size = Math.ceil(Math.max(wantW, wantH));
  let y = wantTop - 0.25 * (size - wantH); // extra height: a quarter above, the rest below
  let x = (left + right) / 2 - size / 2;
  const maxSize = Math.floor(Math.min(width, height));
  let limited = false;
  if (size > maxSize) {
    // Keep the head: centre the smaller square on the head's centre before sliding it inside.
    const cx = (left + right) / 2;
    const cy = (top + chin) / 2;
    size = maxSize;
    x = cx - size / 2;
    y = cy - size / 2;
    limited = true;
  }
  x = Math.round(Math.min(Math.max(x, 0), width - size));
  y = Math.round(Math.min(Math.max(y, 0), height - size));
  return { x, y, size, limited };
}
