/**
 * AvatarRegistry: finds avatar folders (each holding avatar.json + the model file it names), validates
 * each manifest and model at load and owns one RenderPool per avatar (one or more render workers). A bad avatar is logged with the file
 * and the problem and skipped; it never takes the server down.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseAvatarManifest, type AvatarManifest } from '../../../shared/src/avatar-manifest.js';
import type { AvatarSummary } from '../../../shared/src/signaling.js';
import type { Logger } from '../log.js';
import { RenderPool, type RenderPoolOptions } from '../render/render-pool.js';

const MANIFEST_FILE = 'avatar.json';

export interface AvatarEntry {
  id: string;
  dir: string;
  manifest: AvatarManifest;
  /** The avatar's renderers (one per render worker; one by default). */
  renderer: RenderPool;
}

export interface AvatarLoadError {
  dir: string;
  error: string;
}

/** How the registry serves its avatars (beside how it renders them). */
export interface ServingOptions {
  /** Frames per second at most: an avatar trained at a higher rate is served at this one (sessions, rooms,
   *  admission and the avatar list all read the served manifest). Absent: each avatar's own rate. */
  maxFps?: number;
}

/** The manifest as served: its frame rate capped at `maxFps` (the same object when nothing changes). */
export function servedManifest(manifest: AvatarManifest, serving: ServingOptions = {}): AvatarManifest {
  const cap = serving.maxFps;
  if (cap === undefined || !(manifest.fps > cap)) return manifest;
  return { ...manifest, fps: cap };
}

/** Avatar ids are folder names; keep them URL- and log-safe. */
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** Reads and validates one folder's manifest. Throws an Error naming the file and the problem. */
export function readAvatarManifest(dir: string): { manifest: AvatarManifest; modelPath: string } {
  const file = join(dir, MANIFEST_FILE);
  if (!existsSync(file)) throw new Error(`${file}: missing (an avatar folder holds ${MANIFEST_FILE} and its model)`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const manifest = parseAvatarManifest(json, file);
  const modelPath = join(dir, manifest.model.file);
  if (!existsSync(modelPath)) throw new Error(`${modelPath}: missing (named by ${file} model.file)`);
  if (!statSync(modelPath).isFile()) throw new Error(`${modelPath}: not a file`);
  return { manifest, modelPath };
}

/**
 * The avatar folders under `root`: `root` itself when it holds avatar.json, else each sub-folder (sorted)
 * that holds one — or looks like it was meant to (has an .onnx file), so that it gets a clear error.
 */
export function findAvatarFolders(root: string): string[] {
  const abs = resolve(root);
  if (!existsSync(abs)) throw new Error(`avatar folder ${abs} does not exist`);
  if (!statSync(abs).isDirectory()) throw new Error(`${abs} is not a folder`);
  if (existsSync(join(abs, MANIFEST_FILE))) return [abs];
  const isFolder = (p: string): boolean => {
    try {
      return statSync(p).isDirectory(); // follows symbolic links: a linked avatar folder counts
    } catch {
      return false; // a dangling link
    }
  };
  return readdirSync(abs)
    .filter((name) => !name.startsWith('.'))
    .map((name) => join(abs, name))
    .filter(isFolder)
    .filter((d) => existsSync(join(d, MANIFEST_FILE)) || readdirSync(d).some((f) => f.endsWith('.onnx')))
    .sort();
}

export class AvatarRegistry {
  private readonly avatars = new Map<string, AvatarEntry>();
  readonly errors: AvatarLoadError[] = [];
  private closed = false;

  private constructor(private readonly log: Logger) {}

  /** Loads every avatar under `root` (see findAvatarFolders). Bad avatars are logged and skipped. */
  static async load(root: string, opts: RenderPoolOptions, log: Logger, serving: ServingOptions = {}): Promise<AvatarRegistry> {
    const reg = new AvatarRegistry(log);
    for (const dir of findAvatarFolders(root)) {
      const id = basename(dir);
      try {
        if (!ID_RE.test(id)) throw new Error(`${dir}: folder name "${id}" is not a valid avatar id (letters, digits, '.', '_', '-')`);
        if (reg.avatars.has(id)) throw new Error(`${dir}: another avatar already has the id "${id}"`);
        const read = readAvatarManifest(dir);
        const manifest = servedManifest(read.manifest, serving);
        const t0 = performance.now();
        const renderer = await RenderPool.create(id, read.modelPath, manifest, opts, log);
        reg.avatars.set(id, { id, dir, manifest, renderer });
        const capped = manifest.fps !== read.manifest.fps ? { ownFps: read.manifest.fps } : {};
        log.info({ avatar: id, dir, size: `${manifest.width}x${manifest.height}`, fps: manifest.fps, ...capped, device: renderer.device, renderWorkers: renderer.size, loadMs: Math.round(performance.now() - t0) }, 'avatar loaded');
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err);
        reg.errors.push({ dir, error });
        log.error({ dir, error }, `avatar skipped: ${error}`);
      }
    }
    return reg;
  }

  get size(): number {
    return this.avatars.size;
  }

  get(id: string): AvatarEntry | undefined {
    return this.avatars.get(id);
  }

  list(): AvatarEntry[] {
    return [...this.avatars.values()];
  }

  summaries(): AvatarSummary[] {
    return this.list().map((a) => summaryOf(a));
  }

  toJSON(): { avatars: ReturnType<RenderPool['toJSON']>[]; errors: AvatarLoadError[] } {
    return { avatars: this.list().map((a) => a.renderer.toJSON()), errors: this.errors };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const all = this.list();
    this.avatars.clear();
    await Promise.all(all.map((a) => a.renderer.close()));
    this.log.debug({ count: all.length }, 'avatars released');
  }
}

export function summaryOf(a: AvatarEntry): AvatarSummary {
  return { id: a.id, name: a.manifest.name, width: a.manifest.width, height: a.manifest.height, fps: a.manifest.fps, driving: a.manifest.driving };
}
