/**
 * WhepViewer: one WHEP viewer of one MediaTap. The viewer's offer (recvonly video + audio) is answered by a
 * TapSender (sendonly tracks in one media stream, the tap's one shared encode, no encode per viewer).
 */
import type { Logger } from '../log.js';
import type { PeerState } from '../session/peer.js';
import type { MediaTap } from '../stream/media-tap.js';
import { TapSender, waitForGathering, type TapSenderOptions } from '../stream/tap-sender.js';

export interface WhepViewerOptions extends TapSenderOptions {
  /** How long to wait for host candidates before answering (ms). */
  gatherTimeoutMs?: number;
}

export class WhepViewer {
  readonly sender: TapSender;
  /** Connection state changes (connected, failed, closed...). */
  set onState(cb: ((s: PeerState) => void) | null) {
    this.sender.onState = cb;
  }

  constructor(
    readonly id: string,
    readonly tap: MediaTap,
    private readonly opts: WhepViewerOptions,
    log: Logger,
  ) {
    this.sender = new TapSender(`whep viewer ${id}`, tap, opts, log);
  }

  /** Answers the viewer's offer (complete SDP, host candidates gathered) and starts forwarding the tap. */
  async answer(offerSdp: string): Promise<string> {
    const { pc } = this.sender;
    if (this.sender.isClosed) throw new Error('viewer is closed');
    await pc.setRemoteDescription({ type: 'offer', sdp: offerSdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await waitForGathering(pc, this.opts.gatherTimeoutMs ?? 5000);
    const sdp = pc.localDescription?.sdp;
    if (!sdp || this.sender.isClosed) throw new Error('no answer (viewer closed while negotiating)');
    this.sender.forward();
    return sdp;
  }

  get connectionState(): string {
    return this.sender.connectionState;
  }

  close(): Promise<void> {
    return this.sender.close();
  }
}
