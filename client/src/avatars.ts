/** GET /avatars → AvatarSummary[] for the picker, validated before use. */
import { arr, num, obj, oneOf, str } from '../../shared/src/json-check.js';
import type { AvatarSummary } from '../../shared/src/signaling.js';

export function parseAvatarSummary(v: unknown, path: string): AvatarSummary {
  const o = obj(v, path);
  return {
    id: str(o.id, `${path}.id`, { nonEmpty: true, max: 200 }),
    name: str(o.name, `${path}.name`, { max: 200 }),
    width: num(o.width, `${path}.width`, { int: true, min: 1, max: 8192 }),
    height: num(o.height, `${path}.height`, { int: true, min: 1, max: 8192 }),
    fps: num(o.fps, `${path}.fps`, { min: 1, max: 240 }),
    driving: oneOf(o.driving, `${path}.driving`, ['expression', 'audio'] as const),
  };
}

export function parseAvatarList(v: unknown): AvatarSummary[] {
  return arr(v, 'avatars').map((e, i) => parseAvatarSummary(e, `avatars[${i}]`));
}
