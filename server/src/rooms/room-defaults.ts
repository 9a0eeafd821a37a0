/** Defaults of the call-room options (`dnp serve --room-size`, `--rooms`), in a light module the option parser can import. */
export const ROOM_DEFAULTS = {
  /** --room-size: most participants per room. */
  maxParticipants: 4,
} as const;
