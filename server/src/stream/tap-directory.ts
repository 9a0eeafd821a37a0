/**
 * TapDirectory: where the server finds a participant's MediaTap by room and participant name (WHEP viewers,
 * egress). A room's publisher registers its tap while it is live; the registration ends by itself when the tap
 * closes. Names follow the same rule as URL path segments of /whep/ROOM/PARTICIPANT.
 */
import type { MediaTap, Unsubscribe } from './media-tap.js';

export const TAP_NAME_RE = /^[A-Za-z0-9_.~-]{1,64}$/;

export interface TapEntry {
  room: string;
  participant: string;
  /** The avatar the participant renders (join tokens are scoped to avatars). */
  avatar: string;
  tap: MediaTap;
}

export class TapDirectory {
  private readonly entries = new Map<string, TapEntry>();
  /** Called after a tap was registered (e.g. to start a configured egress). */
  onAdded: ((e: TapEntry) => void) | null = null;

  private static key(room: string, participant: string): string {
    return `${room}/${participant}`;
  }

  register(entry: TapEntry): Unsubscribe {
    if (!TAP_NAME_RE.test(entry.room) || !TAP_NAME_RE.test(entry.participant)) throw new Error(`invalid tap name ${entry.room}/${entry.participant}`);
    const key = TapDirectory.key(entry.room, entry.participant);
    this.entries.set(key, entry);
    let offClosed: Unsubscribe = () => {};
    const remove = (): void => {
      offClosed();
      if (this.entries.get(key) === entry) this.entries.delete(key);
    };
    offClosed = entry.tap.onClosed(remove);
    this.onAdded?.(entry);
    return remove;
  }

  find(room: string, participant: string): TapEntry | undefined {
    const e = this.entries.get(TapDirectory.key(room, participant));
    return e && !e.tap.closed ? e : undefined;
  }

  list(): TapEntry[] {
    return [...this.entries.values()].filter((e) => !e.tap.closed);
  }
}
