import { Buffers, type Module, type Param, sizeOf } from "../module.ts";

/**
 * Max or average pooling over channels-last images with a `size`×`size` window and a stride, no padding
 * (`floor((H - size) / stride) + 1` rows out; what does not fill a window is dropped). Windows may overlap.
 */
export class Pool2d implements Module {
  readonly outShape: number[];
  readonly #kind: "max" | "avg";
  readonly #in: [number, number, number];
  readonly #size: number;
  readonly #stride: number;
  readonly #bufs = new Buffers();
  #arg: Int32Array = new Int32Array(0);

  constructor(kind: "max" | "avg", inShape: number[], size: number, stride: number) {
    const [h, w, c] = inShape as [number, number, number];
    if (inShape.length !== 3 || h < size || w < size) {
      throw new Error(`${kind} pool: a ${size}×${size} window does not fit ${inShape.join("×")} inputs`);
    }
    this.#kind = kind;
    this.#in = [h, w, c];
    this.#size = size;
    this.#stride = stride;
    this.outShape = [Math.floor((h - size) / stride) + 1, Math.floor((w - size) / stride) + 1, c];
  }

  forward(x: Float32Array, b: number): Float32Array {
    const [H, W, C] = this.#in, [ho, wo] = this.outShape as [number, number];
    const k = this.#size, s = this.#stride, max = this.#kind === "max";
    const y = this.#bufs.get("y", b * ho * wo * C);
    if (max && this.#arg.length < y.length) this.#arg = new Int32Array(y.length);
    const arg = this.#arg;
    let o = 0;
    for (let n = 0; n < b; n++) {
      for (let oy = 0; oy < ho; oy++) {
        for (let ox = 0; ox < wo; ox++) {
          const corner = ((n * H + oy * s) * W + ox * s) * C;
          for (let c = 0; c < C; c++, o++) {
            let best = corner + c, v = max ? x[best]! : 0;
            for (let ky = 0; ky < k; ky++) {
              for (let kx = 0; kx < k; kx++) {
                const j = corner + (ky * W + kx) * C + c;
                if (!max) v += x[j]!;
                else if (x[j]! > v) v = x[best = j]!;
              }
            }
            y[o] = max ? v : v / (k * k);
            if (max) arg[o] = best;
          }
        }
      }
    }
    return y;
  }

  backward(dy: Float32Array, b: number, needDx: boolean): Float32Array | null {
    if (!needDx) return null;
    const [H, W, C] = this.#in, [ho, wo] = this.outShape as [number, number];
    const dx = this.#bufs.get("dx", b * H * W * C);
    dx.fill(0);
    if (this.#kind === "max") {
      for (let o = 0; o < dy.length; o++) dx[this.#arg[o]!]! += dy[o]!;
      return dx;
    }
    const k = this.#size, s = this.#stride, share = 1 / (k * k);
    let o = 0;
    for (let n = 0; n < b; n++) {
      for (let oy = 0; oy < ho; oy++) {
        for (let ox = 0; ox < wo; ox++) {
          const corner = ((n * H + oy * s) * W + ox * s) * C;
          for (let c = 0; c < C; c++, o++) {
            const g = dy[o]! * share;
            for (let ky = 0; ky < k; ky++) for (let kx = 0; kx < k; kx++) dx[corner + (ky * W + kx) * C + c]! += g;
          }
        }
      }
    }
    return dx;
  }

  params(): Param[] {
    return [];
  }
}

/** `[..]` to `[prod(..)]`: channels-last data is already in that order, so the buffers pass through. */
export class Flatten implements Module {
  readonly outShape: number[];

  constructor(inShape: number[]) {
    this.outShape = [sizeOf(inShape)];
  }

  forward(x: Float32Array): Float32Array {
    return x;
  }

  backward(dy: Float32Array, _b: number, needDx: boolean): Float32Array | null {
    return needDx ? dy : null;
  }

  params(): Param[] {
    return [];
  }
}
