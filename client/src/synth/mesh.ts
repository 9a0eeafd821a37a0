/** Triangle meshes built from parametric grids, with per-frame normal recomputation (pure, no WebGL). */
import type { Vec3 } from './mat4.js';

export interface Mesh {
  /** xyz per vertex, in the part's own space. */
  positions: Float32Array;
  normals: Float32Array;
  /** A per-vertex coordinate the shader uses for patterns (iris, lash line, hairline): the rest position. */
  local: Float32Array;
  indices: Uint32Array;
}

export interface Grid {
  nu: number;
  nv: number;
  /** Whether column nu-1 joins column 0 (closed around u). */
  wrapU: boolean;
}

/** Indices of the triangles of a (nu × nv) vertex grid, vertex (i, j) at j * nu + i. */
export function gridIndices(g: Grid): Uint32Array {
  const cols = g.wrapU ? g.nu : g.nu - 1;
  const out = new Uint32Array(cols * (g.nv - 1) * 6);
  let k = 0;
  for (let j = 0; j < g.nv - 1; j++) {
    for (let i = 0; i < cols; i++) {
      const i1 = (i + 1) % g.nu;
      const a = j * g.nu + i, b = j * g.nu + i1, c = (j + 1) * g.nu + i, d = (j + 1) * g.nu + i1;
      out[k++] = a; out[k++] = c; out[k++] = b;
      out[k++] = b; out[k++] = c; out[k++] = d;
    }
  }
  return out;
}

/** A grid mesh whose vertex (i, j) is f(i / (nu-1) or i / nu when wrapped, j / (nv-1)). */
export function gridMesh(g: Grid, f: (u: number, v: number) => Vec3): Mesh {
  const n = g.nu * g.nv;
  const positions = new Float32Array(n * 3);
  fillGrid(positions, g, f);
  const indices = gridIndices(g);
  const mesh: Mesh = { positions, normals: new Float32Array(n * 3), local: positions.slice(), indices };
  computeNormals(mesh);
  return mesh;
}

/** Rewrites a grid mesh's positions in place (same grid as it was built with). */
export function fillGrid(positions: Float32Array, g: Grid, f: (u: number, v: number) => Vec3): void {
  for (let j = 0; j < g.nv; j++) {
    const v = j / (g.nv - 1);
    for (let i = 0; i < g.nu; i++) {
      const u = g.wrapU ? i / g.nu : i / (g.nu - 1);
      const p = f(u, v);
      const o = (j * g.nu + i) * 3;
      positions[o] = p[0];
      positions[o + 1] = p[1];
      positions[o + 2] = p[2];
    }
  }
}

/** Area-weighted vertex normals from the triangles (counter-clockwise front faces). */
export function computeNormals(m: Mesh): void {
  const p = m.positions, n = m.normals, idx = m.indices;
  n.fill(0);
  for (let t = 0; t < idx.length; t += 3) {
    const a = (idx[t] as number) * 3, b = (idx[t + 1] as number) * 3, c = (idx[t + 2] as number) * 3;
    const ax = p[a] as number, ay = p[a + 1] as number, az = p[a + 2] as number;
    const e1x = (p[b] as number) - ax, e1y = (p[b + 1] as number) - ay, e1z = (p[b + 2] as number) - az;
    const e2x = (p[c] as number) - ax, e2y = (p[c + 1] as number) - ay, e2z = (p[c + 2] as number) - az;
    const nx = e1y * e2z - e1z * e2y, ny = e1z * e2x - e1x * e2z, nz = e1x * e2y - e1y * e2x;
    for (const v of [a, b, c]) {
      n[v] = (n[v] as number) + nx;
      n[v + 1] = (n[v + 1] as number) + ny;
      n[v + 2] = (n[v + 2] as number) + nz;
    }
  }
  for (let v = 0; v < n.length; v += 3) {
    const x = n[v] as number, y = n[v + 1] as number, z = n[v + 2] as number;
    const l = Math.hypot(x, y, z) || 1;
    n[v] = x / l;
    n[v + 1] = y / l;
    n[v + 2] = z / l;
  }
}

/** Ellipsoid (centre c, radii r) as a latitude/longitude grid; u = longitude from the front (+z), v = 0 top … 1 bottom. */
export function ellipsoid(c: Vec3, r: Vec3, nu = 32, nv = 20): Mesh {
  return gridMesh({ nu, nv, wrapU: true }, (u, v) => {
    const th = v * Math.PI, ph = u * 2 * Math.PI;
    return [c[0] + r[0] * Math.sin(th) * Math.sin(ph), c[1] + r[1] * Math.cos(th), c[2] + r[2] * Math.sin(th) * Math.cos(ph)];
  });
}

/** Appends meshes into one (indices offset). */
export function mergeMeshes(ms: readonly Mesh[]): Mesh {
  const nv = ms.reduce((a, m) => a + m.positions.length / 3, 0);
  const ni = ms.reduce((a, m) => a + m.indices.length, 0);
  const out: Mesh = { positions: new Float32Array(nv * 3), normals: new Float32Array(nv * 3), local: new Float32Array(nv * 3), indices: new Uint32Array(ni) };
  let vo = 0, io = 0;
  for (const m of ms) {
    out.positions.set(m.positions, vo * 3);
    out.normals.set(m.normals, vo * 3);
    out.local.set(m.local, vo * 3);
    for (let k = 0; k < m.indices.length; k++) out.indices[io + k] = (m.indices[k] as number) + vo;
    vo += m.positions.length / 3;
    io += m.indices.length;
  }
  return out;
}
