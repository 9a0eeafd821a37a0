/** The avatar a bench runs: a real avatar folder (`--avatar DIR`), or an untrained one made on the fly. */
import { basename, join, resolve } from 'node:path';
import { avatarOutputFormat, type AvatarManifest } from '../../../shared/src/avatar-manifest.js';
import { readAvatarManifest, servedManifest } from '../avatars/registry.js';
import { exportUntrainedAvatar, type UntrainedPreset } from './untrained-avatar.js';

export interface BenchAvatar {
  /** what to pass to `dnp serve --avatars` */
  avatarsDir: string;
  id: string;
  dir: string;
  modelPath: string;
  manifest: AvatarManifest;
  size: number;
  fps: number;
  /** avatar.json training.flopsPerFrame, when recorded */
  flopsPerFrame: number | null;
  /** e.g. "untrained warp (variant W)" or the folder */
  description: string;
}

export type BenchAvatarSource = { kind: 'folder'; dir: string } | { kind: 'untrained'; preset: UntrainedPreset; size: number; fps: number };

function flopsPerFrameOf(m: AvatarManifest): number | null {
  const f = m.training.flopsPerFrame;
  return typeof f === 'number' && Number.isFinite(f) && f > 0 ? f : null;
}

function describe(m: AvatarManifest, fallback: string): string {
  const t = m.training;
  const preset = typeof t.preset === 'string' ? t.preset : null;
  const variant = typeof t.variant === 'string' ? t.variant : null;
  const untrained = t.untrained === true;
  const what = [untrained ? 'untrained' : 'trained', preset, variant ? `(variant ${variant})` : null].filter(Boolean).join(' ');
  return preset || variant ? what : fallback;
}

/** Reads (and validates) an avatar folder, or exports an untrained avatar into `tmp`. Throws with the problem.
 *  `maxFps`: the server's --max-fps (the manifest and fps are then the ones served). */
export async function prepareBenchAvatar(src: BenchAvatarSource, tmp: string, maxFps: number | null = null): Promise<BenchAvatar> {
  let dir: string;
  let avatarsDir: string;
  if (src.kind === 'folder') {
    dir = resolve(src.dir);
    avatarsDir = dir;
  } else {
    const name = `bench-${src.preset}-${src.size}`;
    avatarsDir = join(tmp, `avatars-${name}`);
    dir = join(avatarsDir, name);
    await exportUntrainedAvatar(dir, { size: src.size, fps: src.fps, preset: src.preset, name });
  }
  const read = readAvatarManifest(dir);
  const { modelPath } = read;
  const manifest = servedManifest(read.manifest, maxFps === null ? {} : { maxFps });
  const served = manifest.fps !== read.manifest.fps ? ` (its own ${read.manifest.fps}; --max-fps)` : '';
  return {
    avatarsDir,
    id: basename(dir),
    dir,
    modelPath,
    manifest,
    size: manifest.width,
    fps: manifest.fps,
    flopsPerFrame: flopsPerFrameOf(manifest),
    description: `${describe(manifest, dir)}, ${manifest.width}x${manifest.height}, ${manifest.fps} fps${served}, ${avatarOutputFormat(manifest)} ${manifest.model.precision ?? 'fp32'}${src.kind === 'folder' ? `, ${dir}` : ''}`,
  };
}
