/** Draws the presenter's parts with WebGL2 (one shader: wrapped diffuse, Blinn-Phong, rim light; sRGB out) and reads pixels back. */
import type { Vec3 } from './mat4.js';
import { viewProjection, CAMERA } from './camera.js';
import type { DrawItem, MaterialKind } from './presenter.js';

const VERT = `#version 300 es
in vec3 aPos; in vec3 aNormal; in vec3 aLocal;
uniform mat4 uModel; uniform mat4 uViewProj;
out vec3 vNormal; out vec3 vLocal; out vec3 vWorld;
void main() {
  vec4 w = uModel * vec4(aPos, 1.0);
  vWorld = w.xyz; vNormal = mat3(uModel) * aNormal; vLocal = aLocal;
  gl_Position = uViewProj * w;
}`;

const FRAG = `#version 300 es
precision highp float;
in vec3 vNormal; in vec3 vLocal; in vec3 vWorld;
uniform vec3 uColor; uniform vec3 uColor2; uniform int uKind; uniform vec2 uSpec; uniform vec3 uCam;
out vec4 outColor;
vec3 lin(vec3 c) { return pow(c, vec3(2.2)); }
bool hairKeep(vec3 p) {
  float front = 5.3 - 0.42 * p.x + 0.065 * p.x * p.x + 0.2 * sin(p.x * 2.3 + 0.5) * smoothstep(5.5, 1.5, abs(p.x));
  if (p.y > front) return true;
  float yb = p.z > -1.2 ? 2.0 : 2.0 - 1.5 * (-1.2 - p.z);
  return p.z < 4.0 + 0.4 * (p.y - 2.0) && p.y > max(yb, -6.5);
}
void main() {
  vec3 n = normalize(vNormal);
  float back = 1.0;
  if (!gl_FrontFacing) { n = -n; back = 0.55; }
  vec3 base = lin(uColor);
  float ks = uSpec.x, shin = uSpec.y;
  if (uKind == 1) {
    vec3 d = normalize(vLocal);
    float a = acos(clamp(d.z, -1.0, 1.0));
    if (a < 0.2) base = vec3(0.012);
    else if (a < 0.56) {
      float t = (a - 0.2) / 0.36;
      base = lin(uColor2) * mix(1.25, 0.75, t) * (1.0 - 0.65 * smoothstep(0.78, 1.0, t));
      base *= 0.9 + 0.1 * sin(atan(d.y, d.x) * 23.0);
    } else base *= mix(1.0, 0.82, smoothstep(0.9, 1.6, a));
  } else if (uKind == 2) {
    float e = abs(vLocal.y) / length(vLocal);
    float lash = vLocal.y > 0.0 ? 0.16 : 0.06;
    if (vLocal.z > 0.0) base = mix(lin(uColor2), base, smoothstep(lash * 0.45, lash, e));
  } else if (uKind == 3) {
    if (!hairKeep(vLocal)) discard;
    base *= 0.92 + 0.08 * sin(vLocal.x * 9.0 + vLocal.z * 2.0 + sin(vLocal.y * 1.3) * 3.0);
  } else if (uKind == 4) {
    base *= mix(1.0, 0.22, clamp(vLocal.z, 0.0, 1.0));
  } else if (uKind == 5) {
    float f = fract(vLocal.x / 0.44 + 0.5);
    base *= mix(0.7, 1.0, smoothstep(0.0, 0.14, min(f, 1.0 - f)));
  } else if (uKind == 7) {
    base *= mix(1.0, 0.45, smoothstep(0.8, 0.99, vLocal.y)) * mix(0.85, 1.0, smoothstep(1.0, 0.6, abs(vLocal.x)));
  }
  vec3 V = normalize(uCam - vWorld);
  vec3 col = base * mix(vec3(0.3, 0.25, 0.23), vec3(0.27, 0.29, 0.33), 0.5 + 0.5 * n.y);
  vec3 Ls[3] = vec3[3](normalize(vec3(-0.55, 0.6, 0.75)), normalize(vec3(0.75, 0.05, 0.6)), normalize(vec3(0.25, 0.55, -0.8)));
  vec3 Cs[3] = vec3[3](vec3(1.0, 0.94, 0.86) * 1.05, vec3(0.75, 0.82, 1.0) * 0.26, vec3(1.0, 1.0, 1.0) * 0.45);
  float wrap = uKind == 0 || uKind == 2 || uKind == 7 ? 0.22 : 0.1;
  for (int i = 0; i < 3; i++) {
    float nl = dot(n, Ls[i]);
    col += base * Cs[i] * max(0.0, (nl + wrap) / (1.0 + wrap));
    if (nl > 0.0) col += ks * pow(max(dot(n, normalize(Ls[i] + V)), 0.0), shin) * Cs[i];
  }
  col += base * pow(1.0 - max(dot(n, V), 0.0), 3.0) * 0.18;
  outColor = vec4(pow(clamp(col * back, 0.0, 1.0), vec3(1.0 / 2.2)), 1.0);
}`;

const KIND: Record<MaterialKind, number> = { skin: 0, eye: 1, lid: 2, hair: 3, cavity: 4, teeth: 5, plain: 6, lip: 7 };

interface GpuMesh {
  vao: WebGLVertexArrayObject;
  pos: WebGLBuffer;
  nrm: WebGLBuffer;
  loc: WebGLBuffer;
  count: number;
}

export class GlPresenterRenderer {
  readonly size: number;
  #gl: WebGL2RenderingContext;
  #prog: WebGLProgram;
  #meshes = new Map<string, GpuMesh>();
  #u: Record<'model' | 'viewProj' | 'color' | 'color2' | 'kind' | 'spec' | 'cam', WebGLUniformLocation | null>;
  #background: Vec3;

  constructor(canvas: HTMLCanvasElement, size: number, background: Vec3) {
    this.size = size;
    this.#background = background;
    canvas.width = size;
    canvas.height = size;
    const gl = canvas.getContext('webgl2', { antialias: true, preserveDrawingBuffer: true, alpha: false });
    if (!gl) throw new Error('WebGL2 is not available');
    this.#gl = gl;
    const sh = (type: number, src: string): WebGLShader => {
      const s = gl.createShader(type);
      if (!s) throw new Error('createShader failed');
      gl.shaderSource(s, src);
      gl.compileShader(s);
      if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(`shader: ${gl.getShaderInfoLog(s) ?? '?'}`);
      return s;
    };
    const prog = gl.createProgram();
    if (!prog) throw new Error('createProgram failed');
    gl.attachShader(prog, sh(gl.VERTEX_SHADER, VERT));
    gl.attachShader(prog, sh(gl.FRAGMENT_SHADER, FRAG));
    gl.bindAttribLocation(prog, 0, 'aPos');
    gl.bindAttribLocation(prog, 1, 'aNormal');
    gl.bindAttribLocation(prog, 2, 'aLocal');
    gl.linkProgram(prog);
    if (!gl.getProgramParameter(prog, gl.LINK_STATUS)) throw new Error(`program: ${gl.getProgramInfoLog(prog) ?? '?'}`);
    this.#prog = prog;
    const u = (name: string): WebGLUniformLocation | null => gl.getUniformLocation(prog, name);
    this.#u = { model: u('uModel'), viewProj: u('uViewProj'), color: u('uColor'), color2: u('uColor2'), kind: u('uKind'), spec: u('uSpec'), cam: u('uCam') };
    gl.enable(gl.DEPTH_TEST);
    gl.viewport(0, 0, size, size);
  }

  #gpu(item: DrawItem): GpuMesh {
    const gl = this.#gl;
    let g = this.#meshes.get(item.key);
    const fresh = !g;
    if (!g) {
      const vao = gl.createVertexArray();
      const mk = (): WebGLBuffer => {
        const b = gl.createBuffer();
        if (!b) throw new Error('createBuffer failed');
        return b;
      };
      if (!vao) throw new Error('createVertexArray failed');
      g = { vao, pos: mk(), nrm: mk(), loc: mk(), count: item.mesh.indices.length };
      gl.bindVertexArray(vao);
      const ib = mk();
      gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, ib);
      gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, item.mesh.indices, gl.STATIC_DRAW);
      [g.pos, g.nrm, g.loc].forEach((b, k) => {
        gl.bindBuffer(gl.ARRAY_BUFFER, b);
        gl.enableVertexAttribArray(k);
        gl.vertexAttribPointer(k, 3, gl.FLOAT, false, 0, 0);
      });
      this.#meshes.set(item.key, g);
    }
    if (fresh || item.dirty) {
      gl.bindVertexArray(g.vao);
      const usage = gl.DYNAMIC_DRAW;
      gl.bindBuffer(gl.ARRAY_BUFFER, g.pos);
      gl.bufferData(gl.ARRAY_BUFFER, item.mesh.positions, usage);
      gl.bindBuffer(gl.ARRAY_BUFFER, g.nrm);
      gl.bufferData(gl.ARRAY_BUFFER, item.mesh.normals, usage);
      if (fresh || item.localDirty) {
        gl.bindBuffer(gl.ARRAY_BUFFER, g.loc);
        gl.bufferData(gl.ARRAY_BUFFER, item.mesh.local, usage);
      }
    }
    return g;
  }

  draw(items: readonly DrawItem[]): void {
    const gl = this.#gl;
    const [r, g, b] = this.#background;
    gl.clearColor(r, g, b, 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    gl.useProgram(this.#prog);
    gl.uniformMatrix4fv(this.#u.viewProj, false, viewProjection());
    gl.uniform3f(this.#u.cam, CAMERA.eye[0], CAMERA.eye[1], CAMERA.eye[2]);
    for (const item of items) {
      const m = this.#gpu(item);
      gl.bindVertexArray(m.vao);
      if (item.closed) gl.enable(gl.CULL_FACE);
      else gl.disable(gl.CULL_FACE);
      gl.uniformMatrix4fv(this.#u.model, false, item.model);
      gl.uniform3fv(this.#u.color, item.material.color);
      gl.uniform3fv(this.#u.color2, item.material.color2);
      gl.uniform1i(this.#u.kind, KIND[item.material.kind]);
      gl.uniform2f(this.#u.spec, item.material.spec[0], item.material.spec[1]);
      gl.drawElements(gl.TRIANGLES, m.count, gl.UNSIGNED_INT, 0);
    }
  }

  /** The drawn image as packed RGB24, top row first. */
  readRgb(): Uint8Array {
    const gl = this.#gl, s = this.size;
    const rgba = new Uint8Array(s * s * 4);
    gl.readPixels(0, 0, s, s, gl.RGBA, gl.UNSIGNED_BYTE, rgba);
    const rgb = new Uint8Array(s * s * 3);
    for (let y = 0; y < s; y++) {
      const src = (s - 1 - y) * s * 4, dst = y * s * 3;
      for (let x = 0; x < s; x++) {
        rgb[dst + x * 3] = rgba[src + x * 4] as number;
        rgb[dst + x * 3 + 1] = rgba[src + x * 4 + 1] as number;
        rgb[dst + x * 3 + 2] = rgba[src + x * 4 + 2] as number;
      }
    }
    return rgb;
  }
}
