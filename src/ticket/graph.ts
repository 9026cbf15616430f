import type { ModelConfig } from "../spec/schema.ts";
import { TicketsweepError } from "../util/errors.ts";
import { type Node, planCustom, resolveCustom } from "../train/nets/custom.ts";

/**
 * The forward pass of a network (built-in or `custom`) as an ordered list of plain operations, for tools outside
 * ticketsweep (`tools/ticket_forward.py`). It mirrors `src/train/nets/build.ts`; the export checks that the ops
 * name every weight tensor of the built network once, in order, with its shape, and the CI test runs the NumPy
 * script on exported tickets, so a drift between the two shows.
 *
 * Activations are channels last: a batch of images is `[N, H, W, C]`, tokens `[N, T, D]`. Every op reads the
 * previous op's output (the first op reads the input batch) and names its weights by tensor name.
 */
export type Op =
  | { op: "flatten" }
  | { op: "linear"; weight: string }
  | { op: "conv2d"; weight: string; stride: number; padding: number }
  | { op: "max_pool"; size: number; stride: number }
  | { op: "avg_pool"; size: number; stride: number }
  | { op: "global_avg_pool" }
  | { op: "relu" }
  | { op: "gelu"; approximation: "tanh" }
  | { op: "batch_norm"; eps: number; affine: false }
  | { op: "layer_norm"; eps: number; affine: false }
  | { op: "residual"; body: Op[]; shortcut: Op[]; relu: boolean }
  | { op: "shortcut_a"; channels: number }
  | { op: "patch_embed"; weight: string; cls_token: string; pos_embed: string; patch: number }
  | { op: "attention"; qkv: string; proj: string; heads: number }
  | { op: "class_token" };

/** What each op computes, written into the manifest next to the ops. */
export const OP_SEMANTICS: Record<Op["op"], string> = {
  flatten: "[N, ...] -> [N, prod(...)], row-major (channels-last order)",
  linear: "y = x @ W.T over the last axis (W [out, in]; no bias)",
  conv2d: "NHWC input, W [out, k, k, in], zero padding `padding` on each side, stride `stride`, no bias: " +
    "y[n, oy, ox, o] = sum_{ky, kx, c} xpad[n, oy*stride + ky, ox*stride + kx, c] * W[o, ky, kx, c]",
  max_pool: "size x size max over NHWC with stride `stride`, no padding: floor((H - size) / stride) + 1 rows out " +
    "(the built-in networks' 2x2, stride 2, drops an odd last row/column)",
  avg_pool: "size x size mean over NHWC with stride `stride`, no padding: floor((H - size) / stride) + 1 rows out",
  global_avg_pool: "[N, H, W, C] -> [N, C], mean over H and W",
  relu: "max(x, 0)",
  gelu: "0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))",
  batch_norm: "(x - mean[c]) / sqrt(var[c] + eps) over the last axis c, no affine; mean and (biased) var are " +
    "the calibrated statistics (see `batch_norm_calibration`)",
  layer_norm: "(x - mean) / sqrt(var + eps) over the last axis of each token or sample (biased var), no affine",
  residual: "y = body(x) + shortcut(x) (identity when `shortcut` is empty), then relu if `relu`",
  shortcut_a: "ResNet option A: x[:, ::2, ::2, :] and the channels zero-padded to `channels`, " +
    "floor((channels - C) / 2) zeros before",
  patch_embed: "[N, H, W, C] cut into p x p patches in row-major patch order, each flattened (py, px, c) and " +
    "projected by W [D, p*p*C] (no bias); the class token prepended; pos_embed [T, D] added: [N, T, D]",
  attention: "multi-head self-attention over [N, T, D]: qkv = x @ Wqkv.T (columns: q, k, v, each D wide, head h " +
    "the columns h*D/heads...); per head softmax(q k^T / sqrt(D/heads)) v, heads concatenated, then @ Wproj.T",
  class_token: "[N, T, D] -> [N, D], token 0",
};

const BN = { op: "batch_norm", eps: 1e-5, affine: false } as const;
const LN = { op: "layer_norm", eps: 1e-5, affine: false } as const;

/** The ops of `model` on `[H, W, C]` inputs. */
export function forwardOps(model: ModelConfig, inShape: number[], classes: number): Op[] {
  const relu = { op: "relu" } as const;
  const conv = (weight: string, stride = 1): Op => ({ op: "conv2d", weight, stride, padding: 1 });
  switch (model.architecture) {
    case "mlp": {
      const ops: Op[] = [{ op: "flatten" }];
      const layers = model.widths.length + 1;
      for (let l = 1; l <= layers; l++) {
        ops.push({ op: "linear", weight: `fc${l}` });
        if (l < layers) ops.push(relu);
      }
      return ops;
    }
    case "conv2":
    case "conv4":
    case "conv6": {
      const pairs = { conv2: 1, conv4: 2, conv6: 3 }[model.architecture];
      const ops: Op[] = [];
      let n = 0;
      for (let p = 0; p < pairs; p++) {
        ops.push(conv(`conv${++n}`), relu, conv(`conv${++n}`), relu, { op: "max_pool", size: 2, stride: 2 });
      }
      ops.push({ op: "flatten" });
      ops.push({ op: "linear", weight: "fc1" }, relu, { op: "linear", weight: "fc2" }, relu);
      ops.push({ op: "linear", weight: "fc3" });
      return ops;
    }
    case "resnet20": {
      const ops: Op[] = [conv("conv1"), BN, relu];
      let channels = 16;
      [16, 32, 64].forEach((c, stage) => {
        for (let blk = 0; blk < 3; blk++) {
          const stride = stage > 0 && blk === 0 ? 2 : 1;
          const name = `stage${stage + 1}.block${blk + 1}`;
          const shortcut: Op[] = stride === 1 && channels === c ? [] : [{ op: "shortcut_a", channels: c }];
          ops.push({
            op: "residual",
            body: [conv(`${name}.conv1`, stride), BN, relu, conv(`${name}.conv2`), BN],
            shortcut,
            relu: true,
          });
          channels = c;
        }
      });
      ops.push({ op: "global_avg_pool" }, { op: "linear", weight: "fc" });
      return ops;
    }
    case "vit": {
      const ops: Op[] = [{
        op: "patch_embed",
        weight: "patch_embed",
        cls_token: "cls_token",
        pos_embed: "pos_embed",
        patch: model.patch_size,
      }];
      for (let i = 1; i <= model.depth; i++) {
        ops.push({
          op: "residual",
          body: [LN, { op: "attention", qkv: `block${i}.attn.qkv`, proj: `block${i}.attn.proj`, heads: model.heads }],
          shortcut: [],
          relu: false,
        });
        ops.push({
          op: "residual",
          body: [
            LN,
            { op: "linear", weight: `block${i}.mlp.fc1` },
            { op: "gelu", approximation: "tanh" },
            { op: "linear", weight: `block${i}.mlp.fc2` },
          ],
          shortcut: [],
          relu: false,
        });
      }
      ops.push(LN, { op: "class_token" }, { op: "linear", weight: "head" });
      return ops;
    }
    case "custom": {
      const { nodes, issues } = resolveCustom(model);
      if (issues.length) {
        throw new TicketsweepError(`ticket export: model.${issues[0]!.path.join(".")}: ${issues[0]!.message}`);
      }
      return customOps(nodes, inShape, classes);
    }
    default:
      throw new TicketsweepError(`ticket export: no forward-pass description for architecture '${model.architecture}'`);
  }
}

/** The ops of a custom network's resolved layers on `inShape` inputs: one op each, blocks inline in their residual. */
function customOps(nodes: Node[], inShape: number[], classes: number): Op[] {
  let shape = inShape;
  return nodes.map((n): Op => {
    const input = shape;
    shape = planCustom([n], input, classes).out;
    switch (n.kind) {
      case "linear":
        return { op: "linear", weight: n.name };
      case "conv2d":
        return { op: "conv2d", weight: n.name, stride: n.stride, padding: n.padding };
      case "max_pool":
      case "avg_pool":
        return { op: n.kind, size: n.size, stride: n.stride };
      case "gelu":
        return { op: "gelu", approximation: "tanh" };
      case "batch_norm":
        return BN;
      case "layer_norm":
        return LN;
      case "residual": {
        const shortcut: Op[] = n.shortcut === "identity"
          ? []
          : n.shortcut === "option_a"
          ? [{ op: "shortcut_a", channels: shape[2]! }]
          : customOps(n.shortcut, input, classes);
        return { op: "residual", body: customOps(n.body, input, classes), shortcut, relu: n.relu };
      }
      default: // relu, flatten, global_avg_pool
        return { op: n.kind };
    }
  });
}

/** The weight tensors the ops read, in the order the network's forward pass first reads them. */
export function opWeights(ops: Op[]): string[] {
  const out: string[] = [];
  for (const o of ops) {
    if (o.op === "linear" || o.op === "conv2d") out.push(o.weight);
    else if (o.op === "patch_embed") out.push(o.weight, o.cls_token, o.pos_embed);
    else if (o.op === "attention") out.push(o.qkv, o.proj);
    else if (o.op === "residual") out.push(...opWeights(o.body), ...opWeights(o.shortcut));
  }
  return out;
}

/** Whether the ops contain a batch norm (whose statistics the export must let a reader recompute). */
export function hasBatchNorm(ops: Op[]): boolean {
  return ops.some((o) => o.op === "batch_norm" || (o.op === "residual" && hasBatchNorm([...o.body, ...o.shortcut])));
}
