import type { Engine } from "../../engine/engine.ts";
import type { ModelConfig } from "../../spec/schema.ts";
import { DataError } from "../../util/errors.ts";
import { Rng, RNG_STREAMS } from "../../util/rng.ts";
import { initWeights } from "../init.ts";
import { GELU, ReLU } from "./layers/activation.ts";
import { Attention } from "./layers/attention.ts";
import { Conv2d, GlobalAvgPool, MaxPool2 } from "./layers/conv.ts";
import { Linear } from "./layers/linear.ts";
import { BatchNorm, LayerNorm } from "./layers/norm.ts";
import { Residual, ShortcutA } from "./layers/residual.ts";
import { ClassToken, PatchEmbed } from "./layers/tokens.ts";
import { Flatten, Pool2d } from "./layers/pool.ts";
import { type Node, planCustom, resolveCustom } from "./custom.ts";
import { type Ctx, type Module, type Param, param, Sequential, sizeOf } from "./module.ts";
import { Net } from "./net.ts";

/** Hands out the weight tensors of a network in order, each from its own seeded stream. */
class Weights {
  readonly #model: ModelConfig;
  #index = 0;

  constructor(model: ModelConfig) {
    this.#model = model;
  }

  /** A frozen tensor drawn from the model's initialiser; `shape[0]` is its output units. */
  take(name: string, shape: number[], fanIn: number): Param {
    const rng = new Rng(this.#model.weight_seed, RNG_STREAMS.weights + this.#index++);
    return param(name, shape, fanIn, initWeights(this.#model.init, fanIn, sizeOf(shape), rng));
  }

  /** A frozen embedding tensor, N(0, 0.02²) as in ViT; never masked. */
  embedding(name: string, shape: number[]): Param {
    const rng = new Rng(this.#model.weight_seed, RNG_STREAMS.weights + this.#index++);
    const w = new Float32Array(sizeOf(shape));
    rng.fillNormal(w);
    for (let i = 0; i < w.length; i++) w[i]! *= 0.02;
    return { ...param(name, shape, shape[shape.length - 1]!, w), masked: false };
  }
}

/** Builds a layer stack, threading each layer's output shape into the next. */
class Stack {
  readonly layers: Module[] = [];
  shape: number[];

  constructor(inShape: number[]) {
    this.shape = inShape;
  }

  add(make: (inShape: number[]) => Module): this {
    const m = make(this.shape);
    this.layers.push(m);
    this.shape = m.outShape;
    return this;
  }

  build(inShape: number[]): Sequential {
    return new Sequential(this.layers, inShape);
  }
}

type Builder = (ctx: Ctx, w: Weights, model: ModelConfig, inShape: number[], classes: number) => Module;

function linear(ctx: Ctx, w: Weights, name: string, inShape: number[], out: number, relu: boolean): Linear {
  const inDim = inShape[inShape.length - 1]!;
  return new Linear(ctx, w.take(name, [out, inDim], inDim), inShape, relu);
}

function conv(
  ctx: Ctx,
  w: Weights,
  name: string,
  inShape: number[],
  cout: number,
  opts: { stride?: number; relu?: boolean } = {},
): Conv2d {
  const cin = inShape[2]!;
  return new Conv2d(ctx, w.take(name, [cout, 3, 3, cin], 9 * cin), inShape, opts);
}

/** MLP `input → widths… → classes`, ReLU between layers (LeNet-300-100 with widths [300, 100]). */
const mlp: Builder = (ctx, w, model, inShape, classes) => {
  const s = new Stack([sizeOf(inShape)]);
  const dims = [...model.widths, classes];
  dims.forEach((out, l) => s.add((sh) => linear(ctx, w, `fc${l + 1}`, sh, out, l + 1 < dims.length)));
  return s.build([sizeOf(inShape)]);
};

/** edge-popup's Conv-2/4/6: pairs of 3×3 convolutions (64, 128, 256) each followed by 2×2 max pooling, FC 256-256. */
const convNet = (pairs: number): Builder => (ctx, w, _model, inShape, classes) => {
  const s = new Stack(inShape);
  let n = 0;
  for (let p = 0; p < pairs; p++) {
    const c = 64 << p;
    s.add((sh) => conv(ctx, w, `conv${++n}`, sh, c, { relu: true }));
    s.add((sh) => conv(ctx, w, `conv${++n}`, sh, c, { relu: true }));
    s.add((sh) => new MaxPool2(sh));
  }
  const flat = [sizeOf(s.shape)];
  s.shape = flat;
  s.add((sh) => linear(ctx, w, "fc1", sh, 256, true));
  s.add((sh) => linear(ctx, w, "fc2", sh, 256, true));
  s.add((sh) => linear(ctx, w, "fc3", sh, classes, false));
  return s.build(inShape);
};

/**
 * ResNet-20 for 32×32 images (He et al. 2016, §4.2): a 3×3 convolution to 16 channels, three stages of three
 * basic blocks (16, 32, 64 channels; stride 2 entering stages 2 and 3, option-A shortcuts), global average
 * pooling, a linear classifier. Batch norm without affine parameters, as in edge-popup's frozen ResNets.
 */
const resnet20: Builder = (ctx, w, _model, inShape, classes) => {
  const s = new Stack(inShape);
  s.add((sh) => conv(ctx, w, "conv1", sh, 16)).add((sh) => new BatchNorm(sh)).add((sh) => new ReLU(sh, ctx));
  [16, 32, 64].forEach((c, stage) => {
    for (let blk = 0; blk < 3; blk++) {
      const stride = stage > 0 && blk === 0 ? 2 : 1;
      const name = `stage${stage + 1}.block${blk + 1}`;
      s.add((sh) => {
        const inner = new Stack(sh)
          .add((x) => conv(ctx, w, `${name}.conv1`, x, c, { stride }))
          .add((x) => new BatchNorm(x))
          .add((x) => new ReLU(x, ctx))
          .add((x) => conv(ctx, w, `${name}.conv2`, x, c))
          .add((x) => new BatchNorm(x));
        const shortcut = stride === 1 && sh[2] === c ? null : new ShortcutA(sh, c);
        return new Residual(inner.build(sh), shortcut, true);
      });
    }
  });
  s.add((sh) => new GlobalAvgPool(sh)).add((sh) => linear(ctx, w, "fc", sh, classes, false));
  return s.build(inShape);
};

/**
 * A small Vision Transformer (Dosovitskiy et al. 2021): patch embedding with a class token and position
 * embeddings, `depth` pre-norm blocks of multi-head self-attention and a GELU MLP, a final layer norm and a
 * linear head on the class token. Bias-free layers and affine-free norms, like the other frozen networks.
 */
const vit: Builder = (ctx, w, model, inShape, classes) => {
  const D = model.dim, p = model.patch_size;
  const [h, wd, c] = inShape as [number, number, number];
  const tokens = (h / p) * (wd / p) + 1;
  const s = new Stack(inShape);
  s.add((sh) =>
    new PatchEmbed(
      ctx,
      w.take("patch_embed", [D, p * p * c], p * p * c),
      w.embedding("cls_token", [D]),
      w.embedding("pos_embed", [tokens, D]),
      sh,
      p,
    )
  );
  for (let i = 1; i <= model.depth; i++) {
    s.add((sh) => {
      const inner = new Stack(sh).add((x) => new LayerNorm(x)).add((x) =>
        new Attention(
          ctx,
          w.take(`block${i}.attn.qkv`, [3 * D, D], D),
          w.take(`block${i}.attn.proj`, [D, D], D),
          x,
          model.heads,
        )
      );
      return new Residual(inner.build(sh), null, false);
    });
    s.add((sh) => {
      const hidden = D * model.mlp_ratio;
      const inner = new Stack(sh).add((x) => new LayerNorm(x))
        .add((x) => linear(ctx, w, `block${i}.mlp.fc1`, x, hidden, false))
        .add((x) => new GELU(x))
        .add((x) => linear(ctx, w, `block${i}.mlp.fc2`, x, D, false));
      return new Residual(inner.build(sh), null, false);
    });
  }
  s.add((sh) => new LayerNorm(sh)).add((sh) => new ClassToken(sh)).add((sh) =>
    linear(ctx, w, "head", sh, classes, false)
  );
  return s.build(inShape);
};

/**
 * A network written in the spec (`model.layers`, src/train/nets/custom.ts): its layers in order, blocks expanded,
 * weight tensors drawn in the order the layers come (as the built-in architectures draw theirs, so that Conv-2
 * written out layer by layer has Conv-2's frozen weights); a ReLU right after a linear layer or a convolution is
 * fused into it, as in the built-in networks.
 */
const custom: Builder = (ctx, w, model, inShape, classes) => {
  const { nodes, issues } = resolveCustom(model);
  const plan = issues.length ? issues : planCustom(nodes, inShape, classes).issues;
  if (plan.length) throw new Error(`model.${plan[0]!.path.join(".")}: ${plan[0]!.message}`);
  const stack = (list: Node[], inShape: number[]): Sequential => {
    const layers: Module[] = [];
    let shape = inShape;
    for (let i = 0; i < list.length; i++) {
      const n = list[i]!;
      const relu = list[i + 1]?.kind === "relu" && (n.kind === "linear" || n.kind === "conv2d");
      if (relu) i++;
      let m: Module;
      switch (n.kind) {
        case "linear":
          m = linear(ctx, w, n.name, shape, n.units === "classes" ? classes : n.units, relu);
          break;
        case "conv2d": {
          const cin = shape[2]!, k = n.kernel;
          m = new Conv2d(ctx, w.take(n.name, [n.channels, k, k, cin], k * k * cin), shape, {
            stride: n.stride,
            pad: n.padding,
            relu,
          });
          break;
        }
        case "max_pool":
        case "avg_pool":
          m = new Pool2d(n.kind === "max_pool" ? "max" : "avg", shape, n.size, n.stride);
          break;
        case "global_avg_pool":
          m = new GlobalAvgPool(shape);
          break;
        case "flatten":
          m = new Flatten(shape);
          break;
        case "relu":
          m = new ReLU(shape, ctx);
          break;
        case "gelu":
          m = new GELU(shape);
          break;
        case "batch_norm":
          m = new BatchNorm(shape);
          break;
        case "layer_norm":
          m = new LayerNorm(shape);
          break;
        case "residual": {
          const body = stack(n.body, shape);
          const shortcut = n.shortcut === "identity"
            ? null
            : n.shortcut === "option_a"
            ? new ShortcutA(shape, body.outShape[2]!)
            : stack(n.shortcut, shape);
          m = new Residual(body, shortcut, n.relu);
          break;
        }
      }
      layers.push(m);
      shape = m.outShape;
    }
    return new Sequential(layers, inShape);
  };
  return stack(nodes, inShape);
};

const BUILDERS: Record<ModelConfig["architecture"], Builder> = {
  mlp,
  conv2: convNet(1),
  conv4: convNet(2),
  conv6: convNet(3),
  resnet20,
  vit,
  custom,
};

/** Whether a layer name matches a pattern of `model.masked` (`*` matches any run of characters). */
export function matchesLayer(pattern: string, name: string): boolean {
  const re = new RegExp("^" + pattern.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*") + "$");
  return re.test(name);
}

/**
 * Builds the frozen network a model config names for inputs of `inputShape` (`[H, W, C]`) and `classes`
 * outputs, with seeded weights; masks the tensors `model.masked` selects.
 * @throws {DataError} when the input does not fit the architecture or a pattern selects no tensor.
 */
export function buildNet(model: ModelConfig, inputShape: number[], classes: number, engine: Engine): Net {
  const ctx: Ctx = { engine };
  const weights = new Weights(model);
  let body: Module;
  try {
    body = BUILDERS[model.architecture](ctx, weights, model, inputShape, classes);
  } catch (e) {
    throw new DataError(
      `model.architecture ${model.architecture} on ${inputShape.join("×")} inputs: ${(e as Error).message}`,
    );
  }
  const params = body.params();
  for (const pattern of model.masked) {
    if (!params.some((p) => p.masked && matchesLayer(pattern, p.name))) {
      throw new DataError(
        `model.masked: '${pattern}' matches no layer of ${model.architecture}; its layers are ` +
          params.filter((p) => p.masked).map((p) => p.name).join(", "),
      );
    }
  }
  for (const p of params) if (p.masked) p.masked = model.masked.some((pat) => matchesLayer(pat, p.name));
  return new Net(body, inputShape, classes, engine);
}
