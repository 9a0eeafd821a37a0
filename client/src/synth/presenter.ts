/**
 * The synthetic presenter: a stylised head-and-shoulders figure built from procedural geometry (skin,
 * eyes, lids, brows, lips, teeth, tongue, mouth interior, hair, ears, neck, torso). `frame(controls)`
 * poses it for one driving vector and returns what to draw; the WebGL side (webgl.ts) only draws.
 * Units are centimetres; x = image right (the subject's left), y = up, z = toward the camera.
 */
import type { FaceControls } from './controls.js';
import { chain, clamp, gauss, rotationX, rotationY, rotationZ, smoothstep, transformPoint, translation, identity, type Mat4, type Vec3 } from './mat4.js';
import { computeNormals, ellipsoid, fillGrid, gridIndices, gridMesh, mergeMeshes, type Grid, type Mesh } from './mesh.js';
import { EYE, HEAD_CENTRE_Y, MOUTH, frontDepth, halfHeight, halfWidth, headPoint, restSeamY, skinZ } from './head-shape.js';
import { JAW_PIVOT, jawMove, mouthState, seamAt, type MouthState } from './mouth.js';

export type MaterialKind = 'skin' | 'eye' | 'lid' | 'hair' | 'cavity' | 'teeth' | 'plain' | 'lip';
export interface Material {
  kind: MaterialKind;
  /** sRGB base colour. */
  color: Vec3;
  /** Second colour: iris (eye), lash line (lid). */
  color2: Vec3;
  /** Specular strength and shininess. */
  spec: [number, number];
}

export interface DrawItem {
  key: string;
  mesh: Mesh;
  model: Mat4;
  material: Material;
  /** The mesh's vertices changed since the last frame (re-upload). */
  dirty: boolean;
  /** The mesh's pattern coordinates (local) changed too. */
  localDirty?: boolean;
  /** Closed, outward-facing surface: back faces can be culled. */
  closed?: boolean;
}

export const PALETTE = {
  background: [0.8, 0.84, 0.87] as Vec3,
  skin: [0.93, 0.74, 0.62] as Vec3,
  lips: [0.79, 0.45, 0.45] as Vec3,
  hair: [0.33, 0.21, 0.14] as Vec3,
  iris: [0.3, 0.46, 0.56] as Vec3,
  sweater: [0.22, 0.42, 0.48] as Vec3,
};

const mat = (kind: MaterialKind, color: Vec3, spec: [number, number], color2: Vec3 = [0, 0, 0]): Material => ({ kind, color, color2, spec });
const MATERIALS = {
  skin: mat('skin', PALETTE.skin, [0.07, 18]),
  lips: mat('lip', PALETTE.lips, [0.18, 30]),
  eye: mat('eye', [0.96, 0.95, 0.93], [0.9, 140], PALETTE.iris),
  lid: mat('lid', PALETTE.skin, [0.06, 18], [0.13, 0.08, 0.07]),
  brow: mat('plain', [0.27, 0.17, 0.11], [0.05, 10]),
  hair: mat('hair', PALETTE.hair, [0.22, 16]),
  cavity: mat('cavity', [0.36, 0.11, 0.12], [0.0, 1]),
  teeth: mat('teeth', [0.95, 0.93, 0.88], [0.3, 40]),
  tongue: mat('skin', [0.78, 0.38, 0.4], [0.2, 30]),
  sweater: mat('plain', PALETTE.sweater, [0.03, 8]),
};

/** Reference translation (cm): pose tx, ty, tz equal to this put the head at its framed place. */
export interface Framing {
  tx: number;
  ty: number;
  tz: number;
}
export const DEFAULT_FRAMING: Framing = { tx: 0, ty: -1.8, tz: -26 };
/**
 * Pitch added to the driving pitch when rendering, so that MediaPipe FaceLandmarker run on a rendered frame
 * reads back the driving pitch (measured: the unrotated head reads as +0.17 rad; `dnp synth` logs the check).
 */
const PITCH_CALIBRATION = -0.17;
/** Depth moves are exaggerated so that a lean toward the camera scales the head as much as in a real close-up. */
const DEPTH_GAIN = 2.4;

const EYE_Z = ((): number => {
  const sy = (EYE.y - HEAD_CENTRE_Y) / halfHeight(1);
  const sx = EYE.x / halfWidth(EYE.y);
  return frontDepth(EYE.y) * Math.sqrt(1 - sx * sx - sy * sy) - EYE.radius + 0.3;
})();
/** Eye centres in head space: index 0 = subject's right (−x), 1 = left (+x). */
export const EYE_CENTRES: [Vec3, Vec3] = [
  [-EYE.x, EYE.y, EYE_Z],
  [EYE.x, EYE.y, EYE_Z],
];

function dynamicGrid(g: Grid): Mesh {
  const n = g.nu * g.nv;
  return { positions: new Float32Array(n * 3), normals: new Float32Array(n * 3), local: new Float32Array(n * 3), indices: gridIndices(g) };
}

function transformMesh(m: Mesh, t: Mat4): Mesh {
  const out: Mesh = { positions: m.positions.slice(), normals: m.normals.slice(), local: m.local.slice(), indices: m.indices };
  for (let i = 0; i < out.positions.length; i += 3) {
    const p = transformPoint(t, [m.positions[i] as number, m.positions[i + 1] as number, m.positions[i + 2] as number]);
    out.positions.set(p, i);
  }
  computeNormals(out);
  return out;
}

interface SkinVertexInfo {
  rest: Float32Array;
  jawWeight: Float32Array;
  /** Indices of the vertices the face's motions can move. */
  active: Uint32Array;
}

const SKIN_GRID: Grid = { nu: 136, nv: 136, wrapU: true };
const LIP_GRID: Grid = { nu: 14, nv: 44, wrapU: true };
const CAVITY_GRID: Grid = { nu: 26, nv: 10, wrapU: false };
const TEETH_GRID: Grid = { nu: 28, nv: 4, wrapU: false };
const BROW_GRID: Grid = { nu: 8, nv: 24, wrapU: true };
const NECK_GRID: Grid = { nu: 36, nv: 18, wrapU: true };

/** Jaw weight of a rest skin point: 1 on the chin and lower lip, 0 above the lip seam, softer toward the ears. */
function jawWeightAt(x: number, y: number, z: number): number {
  const ax = Math.abs(x);
  const seam = restSeamY(Math.min(ax, 7));
  const width = 0.26 + 0.7 * smoothstep(1.8, 4.5, ax);
  return smoothstep(seam + width, seam - width, y) * smoothstep(-5, 0.5, z);
}

export class Presenter {
  readonly framing: Framing;
  #skin: Mesh;
  #skinInfo: SkinVertexInfo;
  #upperLip = dynamicGrid(LIP_GRID);
  #lowerLip = dynamicGrid(LIP_GRID);
  #cavity = dynamicGrid(CAVITY_GRID);
  #upperTeeth: Mesh;
  #lowerTeeth: Mesh;
  #tongue: Mesh;
  #brows: [Mesh, Mesh] = [dynamicGrid(BROW_GRID), dynamicGrid(BROW_GRID)];
  #eyeball: Mesh;
  #upperLid: Mesh;
  #lowerLid: Mesh;
  #hair: Mesh;
  #ears: Mesh;
  #neck = dynamicGrid(NECK_GRID);
  #neckRest: Float32Array;
  #torso: Mesh;
  #first = true;

  constructor(framing: Framing = DEFAULT_FRAMING) {
    this.framing = framing;
    // skin: a latitude/longitude grid, denser toward the face
    this.#skin = gridMesh(SKIN_GRID, (u, v) => {
      const t = 2 * u - 1;
      const ph = Math.PI * (0.4 * t + 0.6 * t * t * t);
      const s = 2 * v - 1;
      const th = Math.PI / 2 + (Math.PI / 2) * (0.75 * s + 0.25 * s * s * s);
      return headPoint(Math.sin(th) * Math.sin(ph), Math.cos(th), Math.sin(th) * Math.cos(ph));
    });
    const rest = this.#skin.positions.slice();
    const n = rest.length / 3;
    const jawWeight = new Float32Array(n);
    const active: number[] = [];
    for (let i = 0; i < n; i++) {
      const x = rest[i * 3] as number, y = rest[i * 3 + 1] as number, z = rest[i * 3 + 2] as number;
      jawWeight[i] = jawWeightAt(x, y, z);
      if (y < 0.5 && z > -4) active.push(i);
    }
    this.#skinInfo = { rest, jawWeight, active: Uint32Array.from(active) };

    // teeth: arcs fixed to the skull (upper) and to the jaw (lower)
    const teeth = (top: number, bottom: number, back: number): Mesh =>
      gridMesh(TEETH_GRID, (u, v) => {
        const x = (2 * u - 1) * 1.75;
        const y = top + (bottom - top) * v;
        return [x, y, skinZ(x * 0.8, MOUTH.seamY) - back - 0.5 * (x / 1.75) ** 2];
      });
    this.#upperTeeth = teeth(MOUTH.seamY + 0.65, MOUTH.seamY - 0.36, 0.85);
    this.#lowerTeeth = teeth(MOUTH.seamY - 0.2, MOUTH.seamY - 1.1, 1.05);
    this.#tongue = ellipsoid([0, MOUTH.seamY - 0.95, skinZ(0, MOUTH.seamY) - 2.4], [1.4, 0.45, 1.55], 24, 14);

    this.#eyeball = ellipsoid([0, 0, 0], [EYE.radius, EYE.radius, EYE.radius], 40, 26);
    const lid = (r: number, lower: boolean): Mesh => {
      const m = gridMesh({ nu: 48, nv: 14, wrapU: true }, (u, v) => {
        const th = lower ? Math.PI / 2 + (v * Math.PI) / 2 : (v * Math.PI) / 2;
        const ph = u * 2 * Math.PI;
        return [r * Math.sin(th) * Math.sin(ph), r * Math.cos(th), r * Math.sin(th) * Math.cos(ph)];
      });
      return m;
    };
    this.#upperLid = lid(EYE.radius + 0.09, false);
    this.#lowerLid = lid(EYE.radius + 0.06, true);

    this.#hair = gridMesh({ nu: 96, nv: 64, wrapU: true }, (u, v) => {
      const th = v * Math.PI, ph = u * 2 * Math.PI;
      const sx = Math.sin(th) * Math.sin(ph), sy = Math.cos(th), sz = Math.sin(th) * Math.cos(ph);
      const lump = 1 + 0.006 * Math.sin(ph * 9 + th * 4) * Math.sin(th * 6);
      const y = HEAD_CENTRE_Y + 0.25 + (sy > 0 ? 11.55 : 10.2) * sy * lump;
      const x = (8.05 + 0.35 * Math.max(0, sy)) * sx * (sy < 0 ? 1 - 0.12 * -sy : 1) * lump;
      const z = ((sz > 0 ? 9.75 : 10.9) * sz - 0.35) * lump;
      return [x, y, z];
    });

    const ear = (side: 1 | -1): Mesh => {
      const e = ellipsoid([0, 0, 0], [0.45, 2.3, 1.35], 20, 14);
      return transformMesh(e, chain(translation(side * 7.45, 0.4, -0.9), rotationY(side * 0.45), rotationZ(side * -0.08)));
    };
    this.#ears = mergeMeshes([ear(-1), ear(1)]);

    this.#neckRest = new Float32Array(NECK_GRID.nu * NECK_GRID.nv * 3);
    fillGrid(this.#neckRest, NECK_GRID, (u, v) => {
      const ph = u * 2 * Math.PI;
      const y = -3.5 - v * 17;
      const r = 4.5 + 0.6 * smoothstep(-12, -16, y);
      return [r * Math.sin(ph), y, -1.6 + 0.93 * r * Math.cos(ph)];
    });
    this.#neck.local.set(this.#neckRest);

    this.#torso = ellipsoid([0, -21.9, -3.0], [19, 9.6, 8.0], 48, 28);
  }

  /** The head's model matrix for a pose (MediaPipe convention: R = Rz(roll) Ry(yaw) Rx(pitch)). */
  headMatrix(c: FaceControls): Mat4 {
    const f = this.framing;
    return chain(translation(c.tx - f.tx, c.ty - f.ty, DEPTH_GAIN * (c.tz - f.tz)), rotationZ(c.roll), rotationY(c.yaw), rotationX(c.pitch + PITCH_CALIBRATION));
  }

  torsoMatrix(c: FaceControls): Mat4 {
    const f = this.framing;
    return chain(translation(0.6 * (c.tx - f.tx), 0.5 * (c.ty - f.ty), 1.2 * (c.tz - f.tz)), rotationY(0.2 * c.yaw), rotationZ(0.12 * c.roll));
  }

  frame(c: FaceControls): DrawItem[] {
    const head = this.headMatrix(c);
    const torso = this.torsoMatrix(c);
    const m = mouthState(c);
    this.#deformSkin(c, m);
    this.#buildLips(m);
    this.#buildCavity(m);
    this.#buildBrows(c);
    this.#buildNeck(head, torso);
    const jaw = jawMatrix(m.jawAngle, m.jawShift);
    const first = this.#first;
    this.#first = false;
    const items: DrawItem[] = [
      { closed: true, key: 'torso', mesh: this.#torso, model: torso, material: MATERIALS.sweater, dirty: first },
      { closed: true, key: 'neck', mesh: this.#neck, model: identity(), material: MATERIALS.skin, dirty: true },
      { closed: true, key: 'skin', mesh: this.#skin, model: head, material: MATERIALS.skin, dirty: true },
      { closed: true, key: 'ears', mesh: this.#ears, model: head, material: MATERIALS.skin, dirty: first },
      { localDirty: true, key: 'cavity', mesh: this.#cavity, model: head, material: MATERIALS.cavity, dirty: true },
      { key: 'teethUpper', mesh: this.#upperTeeth, model: head, material: MATERIALS.teeth, dirty: first },
      { key: 'teethLower', mesh: this.#lowerTeeth, model: chain(head, jaw), material: MATERIALS.teeth, dirty: first },
      { closed: true, key: 'tongue', mesh: this.#tongue, model: chain(head, jaw), material: MATERIALS.tongue, dirty: first },
      { localDirty: true, key: 'lipUpper', mesh: this.#upperLip, model: head, material: MATERIALS.lips, dirty: true },
      { localDirty: true, key: 'lipLower', mesh: this.#lowerLip, model: head, material: MATERIALS.lips, dirty: true },
      { key: 'browRight', mesh: this.#brows[0], model: head, material: MATERIALS.brow, dirty: true },
      { key: 'browLeft', mesh: this.#brows[1], model: head, material: MATERIALS.brow, dirty: true },
      { key: 'hair', mesh: this.#hair, model: head, material: MATERIALS.hair, dirty: first },
    ];
    const b = c.bs;
    const gaze = chain(rotationY(clamp(c.gazeYaw, -0.7, 0.7)), rotationX(-clamp(c.gazePitch, -0.6, 0.6)));
    (['Right', 'Left'] as const).forEach((side, k) => {
      const centre = EYE_CENTRES[k] as Vec3;
      const sign = k === 0 ? -1 : 1;
      const eyeM = chain(head, translation(centre[0], centre[1], centre[2]));
      const blink = b(`eyeBlink${side}`), wide = b(`eyeWide${side}`), squint = b(`eyeSquint${side}`);
      const lower = -0.42 + 0.1 * blink + 0.28 * squint + 0.12 * b(`cheekSquint${side}`);
      const upperOpen = 0.4 + 0.42 * wide - 0.1 * squint + 0.45 * clamp(c.gazePitch, -0.5, 0.5);
      const upper = Math.max(lower - 0.04, upperOpen - (upperOpen - lower + 0.05) * blink);
      const tilt = rotationZ(sign * 0.07);
      items.push(
        { closed: true, key: `eye${side}`, mesh: this.#eyeball, model: chain(eyeM, gaze), material: MATERIALS.eye, dirty: first },
        { key: `lidUpper${side}`, mesh: this.#upperLid, model: chain(eyeM, tilt, rotationX(-upper)), material: MATERIALS.lid, dirty: first },
        { key: `lidLower${side}`, mesh: this.#lowerLid, model: chain(eyeM, tilt, rotationX(-lower)), material: MATERIALS.lid, dirty: first },
      );
    });
    return items;
  }

  #deformSkin(c: FaceControls, m: MouthState): void {
    const { rest, jawWeight, active } = this.#skinInfo;
    const p = this.#skin.positions;
    const b = c.bs;
    const smile = [b('mouthSmileRight'), b('mouthSmileLeft')];
    const puff = b('cheekPuff');
    const restCornerY = restSeamY(MOUTH.halfWidth);
    const [r, l] = m.corners;
    const mx = (r[0] + l[0]) / 2, halfW = Math.max(0.5, (l[0] - r[0]) / 2);
    const open = smoothstep(0.03, 0.3, m.gapMid);
    const cj = Math.cos(m.jawAngle), sj = Math.sin(m.jawAngle);
    for (let k = 0; k < active.length; k++) {
      const i = active[k] as number;
      const o = i * 3;
      const x = rest[o] as number, y = rest[o + 1] as number, z = rest[o + 2] as number;
      const w = jawWeight[i] as number;
      let dx = 0, dy = 0, dz = 0;
      for (let s = 0; s < 2; s++) {
        const sign = s === 0 ? -1 : 1;
        const cd = m.cornerDelta[s] as Vec3;
        const g = gauss(x - sign * MOUTH.halfWidth, y - restCornerY, 1.15, 0.95);
        dx += cd[0] * g;
        dy += cd[1] * g;
        dz += cd[2] * g;
        const sm = smile[s] as number;
        const gc = gauss(x - sign * 3.1, y + 2.6, 1.35, 1.1);
        dy += 0.4 * sm * gc;
        dz += 0.5 * sm * gc;
        if (sign * x > 0) {
          const gp = puff * gauss(Math.abs(x) - 3.9, y - MOUTH.seamY + 0.1, 1.6, 1.7);
          dx += sign * 0.85 * gp;
          dz += 0.55 * gp;
        }
      }
      const gm = gauss(x, y - MOUTH.seamY, 1.9, 1.4);
      dz += 0.75 * m.protrusion * gm;
      dx -= x * 0.8 * m.narrow * gm;
      dy += m.upRaise * (1 - w) * gauss(x, y - MOUTH.seamY - 0.45, 1.8, 0.8) - m.lowDrop * w * gauss(x, y - MOUTH.seamY + 0.55, 1.8, 1.0);
      let qx = x + dx, qy = y + dy, qz = z + dz;
      if (w > 0) {
        const ry = qy - JAW_PIVOT[1], rz = qz - JAW_PIVOT[2];
        const jx = qx + m.jawShift, jy = JAW_PIVOT[1] + ry * cj - rz * sj, jz = JAW_PIVOT[2] + ry * sj + rz * cj;
        qx += (jx - qx) * w;
        qy += (jy - qy) * w;
        qz += (jz - qz) * w;
      }
      if (open > 0 && w > 0 && w < 1) {
        const u = (x - mx) / halfW;
        const lat = smoothstep(1.02, 0.7, Math.abs(u));
        qz -= 3.6 * 4 * w * (1 - w) * lat * open;
      }
      p[o] = qx;
      p[o + 1] = qy;
      p[o + 2] = qz;
    }
    computeNormals(this.#skin);
  }

  /** Centre line of a lip at u ∈ [−1, 1]: x, y, z of the tube centre and its half height and half depth. */
  #lipCentre(m: MouthState, u: number, upper: boolean): { c: Vec3; h: number; d: number } {
    const s = seamAt(m, u);
    const env = Math.max(0, 1 - u * u);
    const h = (upper ? m.upperThick : m.lowerThick) * Math.sqrt(env) + 0.025;
    const d = 0.27 * env ** 0.4 * (1 + 0.3 * m.protrusion) + 0.03;
    const y = upper ? s.y + m.upRaise * env ** 0.6 + h : s.y - m.lowDrop * env ** 0.6 - h;
    const z = skinZ(s.x, y) + s.dz + m.protrusion * Math.sqrt(env) - 0.03;
    let c: Vec3 = [s.x, y, z];
    if (!upper) c = jawMove(c, m.lipJawAngle * env ** 0.3, m.jawShift * env ** 0.3);
    return { c, h, d };
  }

  #buildLips(m: MouthState): void {
    for (const upper of [true, false]) {
      const mesh = upper ? this.#upperLip : this.#lowerLip;
      fillGrid(mesh.positions, LIP_GRID, (a, v) => {
        const u = 2 * v - 1;
        const { c, h, d } = this.#lipCentre(m, u, upper);
        const ps = a * 2 * Math.PI;
        return [c[0], c[1] + h * Math.cos(ps), c[2] - d * Math.sin(ps)];
      });
      for (let j = 0; j < LIP_GRID.nv; j++) {
        for (let i = 0; i < LIP_GRID.nu; i++) {
          const ps = (i / LIP_GRID.nu) * 2 * Math.PI;
          const o = (j * LIP_GRID.nu + i) * 3;
          mesh.local[o] = (2 * j) / (LIP_GRID.nv - 1) - 1;
          mesh.local[o + 1] = upper ? -Math.cos(ps) : Math.cos(ps);
          mesh.local[o + 2] = -Math.sin(ps);
        }
      }
      computeNormals(mesh);
    }
  }

  #buildCavity(m: MouthState): void {
    const depth = 2.3;
    const local = this.#cavity.local;
    fillGrid(this.#cavity.positions, CAVITY_GRID, (uu, v) => {
      const u = 1.98 * uu - 0.99;
      const a = this.#lipCentre(m, u, true).c, b = this.#lipCentre(m, u, false).c;
      const env = Math.max(0, 1 - u * u);
      const f = Math.sin(Math.PI * v) ** 0.4 * Math.sqrt(env);
      return [a[0] + (b[0] - a[0]) * v, a[1] + (b[1] - a[1]) * v, a[2] + (b[2] - a[2]) * v - depth * f];
    });
    for (let j = 0; j < CAVITY_GRID.nv; j++) {
      for (let i = 0; i < CAVITY_GRID.nu; i++) {
        const u = (2 * i) / (CAVITY_GRID.nu - 1) - 1;
        local[(j * CAVITY_GRID.nu + i) * 3 + 2] = Math.sin((Math.PI * j) / (CAVITY_GRID.nv - 1)) ** 0.4 * Math.sqrt(Math.max(0, 1 - u * u));
      }
    }
    computeNormals(this.#cavity);
  }

  #buildBrows(c: FaceControls): void {
    const b = c.bs;
    (['Right', 'Left'] as const).forEach((side, k) => {
      const sign = k === 0 ? -1 : 1;
      const inner = b('browInnerUp'), down = b(`browDown${side}`), outer = b(`browOuterUp${side}`);
      const pIn: [number, number] = [sign * (1.15 - 0.22 * down), 3.0 + 0.7 * inner - 0.55 * down];
      const pMid: [number, number] = [sign * 2.9, 3.5 + 0.22 * inner + 0.35 * outer - 0.32 * down];
      const pOut: [number, number] = [sign * 4.6, 3.05 + 0.65 * outer - 0.12 * down + 0.05 * inner];
      const mesh = this.#brows[k] as Mesh;
      fillGrid(mesh.positions, BROW_GRID, (a, v) => {
        // v runs toward +x; t runs from the inner end to the outer end
        const t = sign > 0 ? v : 1 - v;
        const q = (i: 0 | 1): number => {
          const p0 = pIn[i], p1 = pMid[i], p2 = pOut[i];
          return p0 * 2 * (t - 0.5) * (t - 1) - p1 * 4 * t * (t - 1) + p2 * 2 * t * (t - 0.5);
        };
        const x = q(0), y = q(1);
        const h = (0.2 - 0.11 * t) * Math.min(1, Math.sin(Math.PI * Math.min(1, 0.15 + t * 0.85)) * 3);
        const d = 0.12;
        const ps = a * 2 * Math.PI;
        return [x, y + h * Math.cos(ps), skinZ(x, y) + 0.06 - d * Math.sin(ps)];
      });
      computeNormals(mesh);
    });
  }

  #buildNeck(head: Mat4, torso: Mat4): void {
    const rest = this.#neckRest, p = this.#neck.positions;
    for (let i = 0; i < rest.length; i += 3) {
      const q: Vec3 = [rest[i] as number, rest[i + 1] as number, rest[i + 2] as number];
      const t = smoothstep(-13.5, -7, q[1]);
      const a = transformPoint(torso, q), h = transformPoint(head, q);
      p[i] = a[0] + (h[0] - a[0]) * t;
      p[i + 1] = a[1] + (h[1] - a[1]) * t;
      p[i + 2] = a[2] + (h[2] - a[2]) * t;
    }
    computeNormals(this.#neck);
  }

  /** Head-space points of interest (for tests and framing): eyes, mouth centre, nose tip, chin. */
  static readonly LANDMARKS = {
    eyeRight: EYE_CENTRES[0],
    eyeLeft: EYE_CENTRES[1],
    mouth: [0, MOUTH.seamY, skinZ(0, MOUTH.seamY)] as Vec3,
    noseTip: [0, -2.45, skinZ(0, -2.45)] as Vec3,
    chin: [0, -8.6, skinZ(0, -8.6)] as Vec3,
  };
}

function jawMatrix(angle: number, shift: number): Mat4 {
  return chain(translation(shift + JAW_PIVOT[0], JAW_PIVOT[1], JAW_PIVOT[2]), rotationX(angle), translation(-JAW_PIVOT[0], -JAW_PIVOT[1], -JAW_PIVOT[2]));
}
