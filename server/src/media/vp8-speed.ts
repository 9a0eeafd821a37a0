/**
 * libvpx's speed for VP8 (`cpu-used`): how much of its search the encoder skips. In realtime mode 0..16, higher is
 * faster; at 16 a 256² picture encodes in about half the time of 8 and the decoded picture is ~1.5-3 dB PSNR further
 * from the rendered one at the same bitrate (docs/server.md, "VP8 speed"). No node-av import: the CLI checks it too.
 */

/** libvpx `cpu-used` a VP8 stream gets unless told otherwise. */
export const DEFAULT_VP8_CPU_USED = 8;

/** Checks a libvpx `cpu-used` value (an integer 0..16); returns it. */
export function checkVp8CpuUsed(v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 16) throw new RangeError(`VP8 cpu-used must be an integer 0..16, got ${v}`);
  return v;
}
