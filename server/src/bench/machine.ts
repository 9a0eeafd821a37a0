/** What machine a bench ran on (numbers depend on it and on its load). */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { round } from './stats.js';

export interface MachineInfo {
  cpu: string;
  cores: number;
  /** widest x86 vector extension the CPU reports (/proc/cpuinfo flags): 'avx512' | 'avx2' | 'avx' | 'none' | 'unknown' */
  simd: string;
  memoryGiB: number;
  platform: string;
  node: string;
  /** 1-minute load average when the bench started */
  loadAverage1m: number;
}

function simd(): string {
  try {
    const flags = /^flags\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.split(/\s+/) ?? [];
    if (flags.includes('avx512f')) return 'avx512';
    if (flags.includes('avx2')) return 'avx2';
    if (flags.includes('avx')) return 'avx';
    return flags.length ? 'none' : 'unknown';
  } catch {
    return 'unknown';
  }
}

export function loadAverage(): number {
  return round(os.loadavg()[0] ?? 0, 2);
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    simd: simd(),
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    platform: `${os.platform()} ${os.release()}`,
    node: process.version,
    loadAverage1m: loadAverage(),
  };
}

export function formatMachine(m: MachineInfo): string {
  return `machine: ${m.cpu} (${m.simd}), ${m.cores} cores, ${m.memoryGiB} GiB, ${m.platform}, node ${m.node}, load ${m.loadAverage1m} at start`;
}
