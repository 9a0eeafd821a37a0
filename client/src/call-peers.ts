/**
 * The browser side of a call room's peers (shared/src/room-signaling.ts): one RTCPeerConnection per server
 * offer — the caller's own (driving data channel + microphone up) and one per remote participant (their avatar
 * video + voice in one media stream). Owns the peers; closeAll() is idempotent.
 */
import type { Socket } from 'socket.io-client';
import { parseRoomOffer } from '../../shared/src/room-signaling.js';
import { DATA_CHANNEL_ID, DATA_CHANNEL_LABEL, type ClientToServerEvents, type ServerToClientEvents } from '../../shared/src/signaling.js';

const GATHER_WAIT_MS = 2_000;

export interface RemotePeer {
  participant: string;
  pc: RTCPeerConnection;
  stream: MediaStream;
}

export interface CallPeerEvents {
  /** the caller's own peer: its data channel (open or opening) */
  onOwnChannel: (channel: RTCDataChannel) => void;
  /** a remote participant's media arrived (the stream holds their video and voice) */
  onRemote: (r: RemotePeer) => void;
  /** a peer failed: the own one ends the call, a remote one its tile */
  onFailed: (participant: string | null) => void;
}

export class CallPeers {
  own: RTCPeerConnection | null = null;
  readonly remotes = new Map<string, RemotePeer>();
  #closed = false;

  constructor(
    private readonly socket: Socket<ServerToClientEvents, ClientToServerEvents>,
    private readonly iceServers: RTCIceServer[],
    private readonly microphone: MediaStreamTrack | null,
    private readonly events: CallPeerEvents,
  ) {}

  /** Answers one 'room-offer' (validated). */
  async answer(raw: unknown): Promise<void> {
    const o = parseRoomOffer(raw);
    if (this.#closed) return;
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    const participant = o.participant;
    if (participant === null) {
      this.own?.close();
      this.own = pc;
      const channel = pc.createDataChannel(DATA_CHANNEL_LABEL, { negotiated: true, id: DATA_CHANNEL_ID, ordered: false, maxRetransmits: 0 });
      channel.binaryType = 'arraybuffer';
      this.events.onOwnChannel(channel);
    } else {
      this.remotes.get(participant)?.pc.close();
      const remote: RemotePeer = { participant, pc, stream: new MediaStream() };
      this.remotes.set(participant, remote);
      pc.ontrack = (ev) => {
        // both tracks come in one stream (same msid): the browser keeps lips and voice in sync
        const stream = ev.streams[0];
        if (stream && remote.stream !== stream) remote.stream = stream;
        else if (!stream) remote.stream.addTrack(ev.track);
        this.events.onRemote(remote);
      };
    }
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'failed') this.events.onFailed(participant);
    };
    pc.onicecandidate = (ev) => {
      if (ev.candidate && !this.#closed) this.socket.emit('room-ice', { peer: o.peer, candidate: { candidate: ev.candidate.candidate, sdpMid: ev.candidate.sdpMid, sdpMLineIndex: ev.candidate.sdpMLineIndex } });
    };
    await pc.setRemoteDescription({ type: 'offer', sdp: o.sdp });
    if (participant === null) {
      // the server's audio m-line receives the microphone: send on it (or leave it inactive without one)
      const t = pc.getTransceivers().find((x) => x.receiver.track.kind === 'audio');
      if (t && this.microphone) {
        await t.sender.replaceTrack(this.microphone);
        t.direction = 'sendonly';
      }
    }
    await pc.setLocalDescription(await pc.createAnswer());
    await new Promise<void>((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      const timer = setTimeout(resolve, GATHER_WAIT_MS);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    if (this.#closed) return;
    this.socket.emit('room-answer', { peer: o.peer, sdp: pc.localDescription?.sdp ?? '' });
  }

  drop(participant: string): void {
    const r = this.remotes.get(participant);
    this.remotes.delete(participant);
    r?.pc.close();
  }

  closeAll(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const r of this.remotes.values()) r.pc.close();
    this.remotes.clear();
    this.own?.close();
    this.own = null;
  }
}
