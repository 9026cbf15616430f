import { Buffers, type Ctx, type Module, type Param } from "../module.ts";
import { Linear } from "./linear.ts";

/**
 * ViT's input: `[H, W, C]` images cut into `p×p` patches, each projected by a bias-free linear layer to
 * `D`, a class token prepended and position embeddings added: `[T0 + 1, D]` tokens. The class token and
 * position embeddings are frozen random tensors like every weight (not masked by default).
 */
export class PatchEmbed implements Module {
  readonly outShape: number[];
  readonly #in: [number, number, number];
  readonly #p: number;
  readonly #t0: number;
  readonly #d: number;
  readonly #proj: Linear;
  readonly #cls: Param;
  readonly #pos: Param;
  readonly #bufs = new Buffers();

  constructor(ctx: Ctx, proj: Param, cls: Param, pos: Param, inShape: number[], patch: number) {
    this.#in = inShape as [number, number, number];
    const [h, w, c] = this.#in;
    if (h % patch || w % patch) throw new Error(`patch_size ${patch} does not divide the ${h}×${w} images`);
    this.#p = patch;
    this.#t0 = (h / patch) * (w / patch);
    this.#d = proj.shape[0]!;
    this.#proj = new Linear(ctx, proj, [this.#t0, patch * patch * c], false);
    this.#cls = cls;
    this.#pos = pos;
    this.outShape = [this.#t0 + 1, this.#d];
  }

  /** Moves pixels between image layout and patch rows (`toPatches` false moves them back, adding). */
  #patchify(img: Float32Array, patches: Float32Array, b: number, toPatches: boolean): void {
    const [H, W, C] = this.#in, p = this.#p, pw = W / p;
    let o = 0;
    for (let n = 0; n < b; n++) {
      for (let t = 0; t < this.#t0; t++) {
        const py = Math.floor(t / pw) * p, px = (t % pw) * p;
        for (let y = 0; y < p; y++) {
          for (let x = 0; x < p; x++) {
            const src = ((n * H + py + y) * W + px + x) * C;
            for (let c = 0; c < C; c++, o++) {
              if (toPatches) patches[o] = img[src + c]!;
              else img[src + c]! += patches[o]!;
            }
          }
        }
      }
    }
  }

  forward(x: Float32Array, b: number): Float32Array {
    const T0 = this.#t0, D = this.#d, P = this.#p * this.#p * this.#in[2];
    const patches = this.#bufs.get("patches", b * T0 * P);
    this.#patchify(x, patches, b, true);
    const emb = this.#proj.forward(patches, b);
    const y = this.#bufs.get("y", b * (T0 + 1) * D);
    const cls = this.#cls.weff, pos = this.#pos.weff;
    for (let n = 0; n < b; n++) {
      const base = n * (T0 + 1) * D;
      for (let j = 0; j < D; j++) y[base + j] = cls[j]! + pos[j]!;
      for (let t = 0; t < T0; t++) {
        for (let j = 0; j < D; j++) y[base + (t + 1) * D + j] = emb[(n * T0 + t) * D + j]! + pos[(t + 1) * D + j]!;
      }
    }
    return y;
  }

  backward(dy: Float32Array, b: number, needDx: boolean): Float32Array | null {
    const T0 = this.#t0, D = this.#d;
    const demb = this.#bufs.get("demb", b * T0 * D);
    for (let n = 0; n < b; n++) {
      demb.set(dy.subarray((n * (T0 + 1) + 1) * D, (n + 1) * (T0 + 1) * D), n * T0 * D);
    }
    const { grad: gcls } = this.#cls, { grad: gpos } = this.#pos;
    if (gcls) gcls.fill(0);
    if (gpos) gpos.fill(0);
    for (let n = 0; n < b; n++) {
      for (let i = 0; i < (T0 + 1) * D; i++) {
        const g = dy[n * (T0 + 1) * D + i]!;
        if (gpos) gpos[i]! += g;
        if (gcls && i < D) gcls[i]! += g;
      }
    }
    const dpatches = this.#proj.backward(demb, b, needDx);
    if (!dpatches) return null;
    const [H, W, C] = this.#in;
    const dx = this.#bufs.get("dx", b * H * W * C);
    dx.fill(0);
    this.#patchify(dx, dpatches, b, false);
    return dx;
  }

  params(): Param[] {
    return [...this.#proj.params(), this.#cls, this.#pos];
  }
}

/** Keeps token 0 (the class token) of `[T, D]` tokens. */
export class ClassToken implements Module {
  readonly outShape: number[];
  readonly #t: number;
  readonly #d: number;
  readonly #bufs = new Buffers();

  constructor(inShape: number[]) {
    [this.#t, this.#d] = inShape as [number, number];
    this.outShape = [this.#d];
  }

  forward(x: Float32Array, b: number): Float32Array {
    const y = this.#bufs.get("y", b * this.#d);
    for (let n = 0; n < b; n++) y.set(x.subarray(n * this.#t * this.#d, n * this.#t * this.#d + this.#d), n * this.#d);
    return y;
  }

  backward(dy: Float32Array, b: number, needDx: boolean): Float32Array | null {
    if (!needDx) return null;
    const dx = this.#bufs.get("dx", b * this.#t * this.#d);
    dx.fill(0);
    for (let n = 0; n < b; n++) dx.set(dy.subarray(n * this.#d, (n + 1) * this.#d), n * this.#t * this.#d);
    return dx;
  }

  params(): Param[] {
    return [];
  }
}
