/**
 * Egress state in /metrics: dnp_egress_state{egress,kind,state} (1 for the current state, 0 for the others),
 * dnp_egress_bytes_total{egress,kind}, dnp_egress_reconnects_total{egress,kind}. Registered on the server's
 * registry (server/src/metrics.ts).
 */
import { Counter, Gauge } from 'prom-client';
import type { Metrics } from '../metrics.js';
import { EGRESS_STATES, type Egress, type EgressObserver, type EgressState } from './egress.js';

export class EgressMetrics implements EgressObserver {
  private readonly stateGauge: Gauge<'egress' | 'kind' | 'state'>;
  private readonly bytesCounter: Counter<'egress' | 'kind'>;
  private readonly reconnectCounter: Counter<'egress' | 'kind'>;

  constructor(m: Metrics) {
    this.stateGauge = new Gauge({ name: 'dnp_egress_state', help: 'egress state: 1 for the current one (idle, connecting, live, retrying, stopped)', labelNames: ['egress', 'kind', 'state'], registers: [m.registry] });
    this.bytesCounter = new Counter({ name: 'dnp_egress_bytes_total', help: 'bytes an egress wrote (RTP payload + headers for WHIP, muxed bytes for RTMP / MP4)', labelNames: ['egress', 'kind'], registers: [m.registry] });
    this.reconnectCounter = new Counter({ name: 'dnp_egress_reconnects_total', help: 'egress reconnection attempts after a failure (exponential back-off)', labelNames: ['egress', 'kind'], registers: [m.registry] });
  }

  state(e: Egress, s: EgressState): void {
    for (const x of EGRESS_STATES) this.stateGauge.set({ egress: e.id, kind: e.kind, state: x }, x === s ? 1 : 0);
  }

  bytes(e: Egress, n: number): void {
    this.bytesCounter.inc({ egress: e.id, kind: e.kind }, n);
  }

  reconnect(e: Egress): void {
    this.reconnectCounter.inc({ egress: e.id, kind: e.kind });
  }
}
