/**
 * Driving vectors the default avatar never trained on: a trajectory of the same recipe with another seed (7; the
 * avatar's dataset used seed 11), `count` frames 10 apart from frame 25. scripts/default-vs-generator.ts and
 * test/default-avatar.test.ts compare the avatar with the generator on exactly these.
 */
import { DEFAULT_FRAMING } from '../../../client/src/synth/presenter.js';
import { loadMotionLibrary } from './motion-library.js';
import { VECTOR_SIZE } from './renderer.js';
import { generateTrajectory } from './trajectory.js';

export const HELD_OUT_SEED = 7;

export interface HeldOutVectors {
  /** The trajectory frames picked. */
  picks: number[];
  /** [count × VECTOR_SIZE] driving vectors, one per pick. */
  vectors: Float32Array;
}

export function heldOutVectors(count: number, seed = HELD_OUT_SEED): HeldOutVectors {
  if (!Number.isInteger(count) || count < 1) throw new Error(`heldOutVectors: count must be a positive integer, got ${count}`);
  const traj = generateTrajectory(loadMotionLibrary(), { frames: count * 10 + 50, fps: 25, seed, framing: DEFAULT_FRAMING });
  const picks = Array.from({ length: count }, (_, i) => 25 + i * 10);
  const vectors = new Float32Array(count * VECTOR_SIZE);
  picks.forEach((f, i) => vectors.set(traj.subarray(f * VECTOR_SIZE, (f + 1) * VECTOR_SIZE), i * VECTOR_SIZE));
  return { picks, vectors };
}
