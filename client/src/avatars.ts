/** GET /avatars → AvatarSummary[] for the picker, validated before use. */
import { arr } from '../../shared/src/json-check.js';
import { parseAvatarSummary, type AvatarSummary } from '../../shared/src/signaling.js';

export function parseAvatarList(v: unknown): AvatarSummary[] {
  return arr(v, 'avatars').map((e, i) => parseAvatarSummary(e, `avatars[${i}]`));
}
