/** The validators of what the server sends back (shared by the page and the Node callers). parseJoinReply, parseAckReply and parseSessionError: test/client-stats.test.ts. */
import { describe, expect, it } from 'vitest';
import { parseRoomEgressReply } from '../shared/src/egress-signaling.js';
import { parseParticipantLeft, parseRoomJoinReply } from '../shared/src/room-signaling.js';
import { parseAvatarSummary, parseShutdownNotice, parseVoiceStats, validated } from '../shared/src/signaling.js';

const avatar = { id: 'a', name: 'A', width: 256, height: 256, fps: 25, driving: 'expression' };

describe('server replies and events, validated', () => {
  it('parseAvatarSummary and parseShutdownNotice', () => {
    expect(parseAvatarSummary(avatar, 'x')).toEqual(avatar);
    expect(() => parseAvatarSummary({ ...avatar, height: 1.5 }, 'x')).toThrow(/x\.height: expected an integer/);
    expect(parseShutdownNotice({ message: 'stopping' })).toBe('stopping');
    expect(() => parseShutdownNotice({ message: 3 })).toThrow(/shutdown\.message/);
  });

  it('parseRoomJoinReply', () => {
    const ok = { ok: true, room: 'r1', participantId: 'p-1', participants: [{ id: 'p-0', name: 'Ann', avatar: 'a' }], maxParticipants: 4 };
    expect(parseRoomJoinReply(ok)).toEqual(ok);
    expect(parseRoomJoinReply({ ok: false, error: 'full', code: 'room-full' })).toEqual({ ok: false, error: 'full', code: 'room-full' });
    expect(parseRoomJoinReply({ ok: false, error: 'x', code: 'newer' })).toMatchObject({ code: 'internal' });
    expect(() => parseRoomJoinReply({ ...ok, participants: [{ id: 'bad id', name: 'x', avatar: 'a' }] })).toThrow(/participant\.id/);
    expect(() => parseRoomJoinReply({ ...ok, maxParticipants: 1 })).toThrow(/maxParticipants/);
    expect(() => parseRoomJoinReply({ ...ok, room: undefined })).toThrow(/room-join reply\.room/);
    expect(() => parseRoomJoinReply(null)).toThrow(/room-join reply: expected an object/);
  });

  it('parseParticipantLeft', () => {
    expect(parseParticipantLeft({ participant: 'p-1' })).toEqual({ participant: 'p-1' });
    expect(() => parseParticipantLeft({ participant: '../x' })).toThrow(/participant-left\.participant/);
  });

  it('parseRoomEgressReply', () => {
    const e = { id: 'e1', kind: 'mp4', state: 'running', participant: 'p-1', bytes: 1000, reconnects: 0, lastError: null };
    expect(parseRoomEgressReply({ ok: true, egress: [e] })).toEqual({ ok: true, egress: [e] });
    expect(parseRoomEgressReply({ ok: false, error: 'no', code: 'forbidden' })).toEqual({ ok: false, error: 'no', code: 'forbidden' });
    expect(() => parseRoomEgressReply({ ok: true, egress: [{ ...e, kind: 'ftp' }] })).toThrow(/egress\[0\]\.kind/);
    expect(() => parseRoomEgressReply({ ok: true, egress: [{ ...e, bytes: -1 }] })).toThrow(/egress\[0\]\.bytes/);
    expect(() => parseRoomEgressReply({ ok: 'yes' })).toThrow(/room-egress reply\.ok/);
  });

  it('validated: a listener that hands on what validates and reports what does not, without throwing', () => {
    const got: unknown[] = [];
    const bad: string[] = [];
    const listener = validated(parseVoiceStats, (v) => got.push(v), (why) => bad.push(why));
    listener({ speechToLipsMs: 120, voiceDelayMs: 80, speech: true });
    expect(() => listener({ voiceDelayMs: 'soon' })).not.toThrow();
    expect(got).toEqual([{ speechToLipsMs: 120, voiceDelayMs: 80, speech: true }]);
    expect(bad).toHaveLength(1);
    expect(bad[0]).toMatch(/voice-stats\./);
  });
});
