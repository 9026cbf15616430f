import { z } from "zod";
import { didYouMean } from "../../util/did_you_mean.ts";

/**
 * `model.architecture: custom`: a network written in the spec as a list of layers (`model.layers`), with
 * residual blocks by reference to named layer lists (`model.blocks`). This module holds the spec's side: the
 * schema of one layer (its canonical form is also what a trial's configuration carries), the resolution of
 * blocks into a tree of named layers, and the shape walk that validates a stack on a dataset's inputs. The
 * network itself is built by `build.ts` from the resolved tree, with the same layer classes as the built-in
 * architectures.
 *
 * A layer is a bare name (`relu`) or a one-key mapping whose value is the layer's main setting (`conv2d: 64`)
 * or its settings (`conv2d: {channels: 64, kernel: 5}`).
 */

/** Layers without settings, written as a bare name. */
export const PLAIN_LAYERS = ["relu", "gelu", "flatten", "batch_norm", "layer_norm", "global_avg_pool"] as const;
export type PlainLayer = typeof PLAIN_LAYERS[number];

const posInt = () => z.number().int().positive();
/** A weight tensor's name: what `model.masked` patterns match and exports name. */
const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
const LayerName = z.string().regex(
  NAME_RE,
  "expected a name of letters, digits, '_', '.' and '-' (at most 64, starting with a letter, digit or '_')",
);

/** The settings of each layer kind that has any; the first field is what the short form (`conv2d: 64`) sets. */
const SETTINGS = {
  linear: z.object({ units: z.union([posInt(), z.literal("classes")]), name: LayerName.optional() }).strict(),
  conv2d: z.object({
    channels: posInt(),
    kernel: posInt().default(3),
    stride: posInt().default(1),
    /** Zero padding on each side; default (kernel - 1) / 2 rounded down ("same" for odd kernels). */
    padding: z.number().int().nonnegative().optional(),
    name: LayerName.optional(),
  }).strict(),
  max_pool: z.object({ size: posInt().default(2), stride: posInt().optional() }).strict(),
  avg_pool: z.object({ size: posInt().default(2), stride: posInt().optional() }).strict(),
  residual: z.object({
    /** The name of the block (in `model.blocks`) that is the residual branch. */
    block: z.string().min(1),
    /** `identity`, `option_a` (ResNet's: every second pixel, channels zero-padded) or a block's name (projection). */
    shortcut: z.string().min(1).default("identity"),
    /** A ReLU after the sum (ResNet's basic block). */
    relu: z.boolean().default(false),
    name: LayerName.optional(),
  }).strict(),
} as const;
type SettingsKind = keyof typeof SETTINGS;
const SHORT: Record<SettingsKind, string> = {
  linear: "units",
  conv2d: "channels",
  max_pool: "size",
  avg_pool: "size",
  residual: "block",
};
export const LAYER_KINDS: readonly string[] = [...PLAIN_LAYERS, ...Object.keys(SETTINGS)];
/** Shortcut values that are not block names. */
export const SHORTCUTS = ["identity", "option_a"] as const;

/** One layer in canonical form (every default filled in); a bare name for the layers without settings. */
export type Layer =
  | PlainLayer
  | { linear: { units: number | "classes"; name?: string } }
  | { conv2d: { channels: number; kernel: number; stride: number; padding: number; name?: string } }
  | { max_pool: { size: number; stride: number } }
  | { avg_pool: { size: number; stride: number } }
  | { residual: { block: string; shortcut: string; relu: boolean; name?: string } };

const describe = (v: unknown): string =>
  v === null
    ? "null"
    : Array.isArray(v)
    ? "a list"
    : typeof v === "object"
    ? "a mapping"
    : typeof v === "string"
    ? `'${v}'`
    : String(v);

const EXAMPLE = "a layer is a name (relu) or one mapping such as `conv2d: 32` or `conv2d: {channels: 32, kernel: 5}`";

/** A settings issue of zod as one clear line. */
function settingMessage(kind: SettingsKind, i: z.ZodIssue, found: unknown): string {
  const allowed = Object.keys(SETTINGS[kind].shape);
  if (i.code === "unrecognized_keys") {
    return i.keys.map((k) => {
      const hint = didYouMean(k, allowed);
      return `unknown setting '${k}' of ${kind}${hint ? `: did you mean '${hint}'?` : ""} (allowed: ${
        allowed.join(", ")
      })`;
    }).join("; ");
  }
  const field = String(i.path[0] ?? SHORT[kind]);
  if (i.code === "invalid_type" && i.received === "undefined") {
    return `${kind} needs \`${field}\` (e.g. \`${kind}: {${field}: …}\`), found none`;
  }
  if (field === "units") {
    return `expected a positive integer or 'classes' (the dataset's classes), found ${describe(found)}`;
  }
  if (i.code === "too_small" && i.type === "number") {
    return `expected an integer ${i.inclusive ? ">=" : ">"} ${i.minimum}, found ${describe(found)}`;
  }
  if (i.code === "invalid_type") return `expected ${i.expected}, found ${describe(found)}`;
  return `${i.message}, found ${describe(found)}`;
}

/**
 * One layer of `model.layers` or a block: parsed into its canonical form, or one issue per problem (at the
 * layer, or at its bad setting) naming the layer kinds or settings allowed.
 */
export const LayerSchema: z.ZodType<Layer, z.ZodTypeDef, unknown> = z.unknown().transform((raw, ctx): Layer => {
  const fail = (message: string, path: (string | number)[] = []) => {
    ctx.addIssue({ code: "custom", message, path });
    return z.NEVER;
  };
  const unknownKind = (k: string) => {
    const hint = didYouMean(k, LAYER_KINDS);
    return `unknown layer '${k}'${hint ? `: did you mean '${hint}'?` : ""} (layers: ${LAYER_KINDS.join(", ")})`;
  };
  if (typeof raw === "string") {
    if ((PLAIN_LAYERS as readonly string[]).includes(raw)) return raw as PlainLayer;
    if (raw === "max_pool" || raw === "avg_pool") return { [raw]: { size: 2, stride: 2 } } as Layer;
    if (Object.hasOwn(SETTINGS, raw)) {
      return fail(`${raw} needs settings: \`${raw}: …\` (its ${SHORT[raw as SettingsKind]})`);
    }
    return fail(unknownKind(raw));
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return fail(`${EXAMPLE}; found ${describe(raw)}`);
  const keys = Object.keys(raw);
  if (keys.length !== 1) {
    return fail(`${EXAMPLE}; found ${keys.length ? `a mapping of ${keys.join(", ")}` : "an empty mapping"}`);
  }
  const kind = keys[0]!;
  const value = (raw as Record<string, unknown>)[kind];
  if ((PLAIN_LAYERS as readonly string[]).includes(kind)) {
    if (value === null || (typeof value === "object" && !Array.isArray(value) && !Object.keys(value).length)) {
      return kind as PlainLayer;
    }
    return fail(`${kind} has no settings: write it as \`- ${kind}\`, found ${describe(value)}`, [kind]);
  }
  if (!Object.hasOwn(SETTINGS, kind)) return fail(unknownKind(kind), [kind]); // not `in`: toString is no layer
  const k = kind as SettingsKind;
  const short = value === null || typeof value !== "object" || Array.isArray(value);
  const settings = value === null && (k === "max_pool" || k === "avg_pool")
    ? {}
    : short
    ? { [SHORT[k]]: value }
    : value;
  const parsed = SETTINGS[k].safeParse(settings);
  if (!parsed.success) {
    for (const i of parsed.error.issues) {
      const found = short ? value : (value as Record<string, unknown>)[String(i.path[0])];
      fail(settingMessage(k, i, found), short || i.code === "unrecognized_keys" ? [kind] : [kind, ...i.path]);
    }
    return z.NEVER;
  }
  const s = parsed.data;
  if (k === "conv2d") {
    const c = s as z.infer<typeof SETTINGS.conv2d>;
    return { conv2d: { ...c, padding: c.padding ?? Math.floor((c.kernel - 1) / 2) } };
  }
  if (k === "max_pool" || k === "avg_pool") {
    const p = s as z.infer<typeof SETTINGS.max_pool>;
    return { [k]: { size: p.size, stride: p.stride ?? p.size } } as Layer;
  }
  return { [k]: s } as Layer;
});

/** `model.layers`: the network, input to logits. */
export const LayersSchema = z.array(LayerSchema).min(1, "expected at least one layer");
/** `model.blocks`: named layer lists that residual layers refer to. */
/** Parsed into a plain object, a block named __proto__ would become the object's prototype: no block at all. */
const PROTO_BLOCK = "__proto__ cannot name a block (JavaScript objects reserve it): rename the block, e.g. proto_block";

export const BlocksSchema = z.unknown().superRefine((v, ctx) => {
  // before the record: it would drop the key and check its value, two lines about one name
  if (v !== null && typeof v === "object" && Object.hasOwn(v, "__proto__")) {
    ctx.addIssue({ code: "custom", path: ["__proto__"], message: PROTO_BLOCK });
  }
}).pipe(z.record(z.string(), z.array(LayerSchema).min(1, "expected at least one layer")));

type Path = (string | number)[];

/** A layer of the resolved network: blocks expanded, every weight tensor named, the spec path it came from. */
export type Node =
  | { kind: "linear"; name: string; units: number | "classes"; at: Path }
  | { kind: "conv2d"; name: string; channels: number; kernel: number; stride: number; padding: number; at: Path }
  | { kind: "max_pool" | "avg_pool"; size: number; stride: number; at: Path }
  | { kind: PlainLayer; at: Path }
  | {
    kind: "residual";
    name: string;
    block: string;
    body: Node[];
    shortcut: "identity" | "option_a" | Node[];
    relu: boolean;
    at: Path;
  };

/** A problem of a custom network at a path of the model (`["layers", 3]`, `["blocks", "basic", 0]`). */
export interface NetIssue {
  path: Path;
  message: string;
}

/** The layers of a model config that `custom` reads. */
export interface CustomModel {
  architecture: string;
  layers?: Layer[] | undefined;
  blocks?: Record<string, Layer[]> | undefined;
}

/** Most layers a resolved network may have (blocks referring to blocks multiply). */
const MAX_NODES = 100_000;

const at = (path: Path) => path.join(".");

/**
 * Expands `model.layers` into a tree of named layers: weight tensors are `conv1, conv2, …` and `fc1, fc2, …` in
 * order (counted per list), unless named; a residual's (`res1, res2, …` unless named) prefixes its block's names
 * (`res1.conv1`) and its shortcut block's (`res1.shortcut.conv1`). Issues: a block that does not exist or
 * contains itself, a weight name used twice, a network too large.
 */
export function resolveCustom(model: CustomModel): { nodes: Node[]; issues: NetIssue[] } {
  const issues: NetIssue[] = [];
  const blocks = model.blocks ?? {};
  let count = 0;
  const seen = new Map<string, Path>();
  const list = (layers: Layer[], base: Path, prefix: string, stack: string[]): Node[] => {
    const n = { conv2d: 0, linear: 0, residual: 0 };
    const out: Node[] = [];
    layers.forEach((layer, i) => {
      const path = [...base, i];
      if (++count > MAX_NODES) {
        if (count === MAX_NODES + 1) {
          issues.push({
            path,
            message: `the network has more than ${
              MAX_NODES.toLocaleString("en-US")
            } layers once its blocks are expanded`,
          });
        }
        return;
      }
      const named = (kind: "conv2d" | "linear", given: string | undefined) => {
        const name = prefix + (given ?? `${kind === "conv2d" ? "conv" : "fc"}${++n[kind]}`);
        if (given !== undefined) n[kind]++; // counted either way: naming one layer renames no other
        const first = seen.get(name);
        if (first) {
          issues.push({
            path,
            message: `weight name '${name}' is used twice (first at model.${at(first)}); give one of them another ` +
              "`name:`",
          });
        } else seen.set(name, path);
        return name;
      };
      if (typeof layer === "string") return void out.push({ kind: layer, at: path });
      if ("linear" in layer) {
        return void out.push({
          kind: "linear",
          name: named("linear", layer.linear.name),
          units: layer.linear.units,
          at: path,
        });
      }
      if ("conv2d" in layer) {
        const { name, ...c } = layer.conv2d;
        return void out.push({ kind: "conv2d", name: named("conv2d", name), ...c, at: path });
      }
      if ("max_pool" in layer) return void out.push({ kind: "max_pool", ...layer.max_pool, at: path });
      if ("avg_pool" in layer) return void out.push({ kind: "avg_pool", ...layer.avg_pool, at: path });
      const r = layer.residual;
      n.residual++;
      const name = prefix + (r.name ?? `res${n.residual}`);
      const sub = (block: string, field: string, sub: string): Node[] | null => {
        const target = Object.hasOwn(blocks, block) ? blocks[block] : undefined; // toString is no block
        if (block === "__proto__") {
          // a `blocks: {__proto__: ...}` is reported there: one line
          if (!Object.hasOwn(blocks, "__proto__")) {
            issues.push({ path: [...path, "residual", field], message: PROTO_BLOCK });
          }
          return null;
        }
        if (target === undefined) {
          const names = Object.keys(blocks);
          const hint = block.length > 2 ? didYouMean(block, names) : undefined;
          issues.push({
            path: [...path, "residual", field],
            message: `no block '${block}' in model.blocks${hint ? `: did you mean '${hint}'?` : ""} (${
              names.length ? `blocks: ${names.join(", ")}` : "the model has no `blocks:`"
            })`,
          });
          return null;
        }
        if (stack.includes(block)) {
          issues.push({
            path: [...path, "residual", field],
            message: `block '${block}' contains itself (${[...stack, block].join(" → ")}): a network is finite`,
          });
          return null;
        }
        return list(target, ["blocks", block], `${name}.${sub}`, [...stack, block]);
      };
      const body = sub(r.block, "block", "");
      let shortcut: "identity" | "option_a" | Node[] | null = r.shortcut === "identity" || r.shortcut === "option_a"
        ? r.shortcut
        : sub(r.shortcut, "shortcut", "shortcut.");
      if (shortcut === null) shortcut = "identity";
      out.push({ kind: "residual", name, block: r.block, body: body ?? [], shortcut, relu: r.relu, at: path });
    });
    return out;
  };
  const nodes = list(model.layers ?? [], ["layers"], "", []);
  return { nodes, issues };
}

/** Whether every layer parsed (zod runs refinements on lists that hold refused elements too). */
function wellFormed(model: CustomModel): boolean {
  const ok = (l: unknown) =>
    typeof l === "string"
      ? (PLAIN_LAYERS as readonly string[]).includes(l)
      : l !== null && typeof l === "object" && Object.keys(l).length === 1 &&
        Object.hasOwn(SETTINGS, Object.keys(l)[0]!);
  const lists = [model.layers ?? [], ...Object.values(model.blocks ?? {})];
  return lists.every((list) => Array.isArray(list) && list.every(ok)) && model.layers?.length !== 0; // [] is reported
}

/**
 * The structural checks of a model config (no input shape needed): `layers` exactly for `custom`, blocks that
 * resolve. Issues are at paths of the model.
 */
export function checkCustomModel(model: CustomModel): NetIssue[] {
  if (!wellFormed(model)) return []; // a layer was refused: its issue is reported
  if (model.architecture !== "custom") {
    const field = model.layers !== undefined ? "layers" : model.blocks !== undefined ? "blocks" : null;
    return field === null ? [] : [{
      path: [field],
      message: `\`${field}\` is for \`architecture: custom\`, found it with architecture ${model.architecture}; ` +
        "drop it or set architecture: custom",
    }];
  }
  if (model.layers === undefined) {
    return [{
      path: ["architecture"],
      message: "architecture custom needs `layers:`, a list such as [conv2d: 32, relu, max_pool, flatten, " +
        "linear: classes]",
    }];
  }
  const bad = Object.keys(model.blocks ?? {}).filter((b) =>
    (SHORTCUTS as readonly string[]).includes(b) || !NAME_RE.test(b)
  );
  return [
    ...bad.map((b) => ({
      path: ["blocks", b],
      message: `'${b}' cannot name a block (${SHORTCUTS.join(" and ")} are shortcuts; a name is letters, digits, ` +
        "'_', '.' and '-')",
    })),
    ...resolveCustom(model).issues,
  ];
}

/** A weight tensor of a custom network: name, shape (`[out, …in]`), fan-in, and the layer it belongs to. */
export interface TensorPlan {
  name: string;
  shape: number[];
  fanIn: number;
  at: Path;
}

const shapeText = (s: number[]) => s.join("×");

/**
 * Walks the resolved layers over inputs of `inShape` (`[H, W, C]`) without allocating: every weight tensor,
 * the output shape, and an issue for each layer that does not fit its input (a convolution after `flatten`, a
 * kernel or pool larger than its input, a residual branch whose shape is not the shortcut's) or a network that
 * does not end in `classes` values. The first issue stops the walk.
 */
export function planCustom(
  nodes: Node[],
  inShape: number[],
  classes: number,
): { tensors: TensorPlan[]; out: number[]; issues: NetIssue[] } {
  const tensors: TensorPlan[] = [];
  const issues: NetIssue[] = [];
  const walk = (list: Node[], shape: number[]): number[] | null => {
    for (const n of list) {
      const fail = (message: string) => (issues.push({ path: n.at, message: `${n.kind}: ${message}` }), null);
      const image = () => shape.length === 3 ? shape as [number, number, number] : null;
      switch (n.kind) {
        case "linear": {
          const inDim = shape[shape.length - 1]!;
          const out = n.units === "classes" ? classes : n.units;
          tensors.push({ name: n.name, shape: [out, inDim], fanIn: inDim, at: n.at });
          shape = [...shape.slice(0, -1), out];
          break;
        }
        case "conv2d": {
          const im = image();
          if (!im) {
            return fail(`needs images [H, W, C], found ${shapeText(shape)} (after a flatten or pooling to vectors?)`);
          }
          const [h, w, c] = im, k = n.kernel, p = n.padding;
          if (h + 2 * p < k || w + 2 * p < k) {
            return fail(`a ${k}×${k} kernel does not fit ${shapeText(shape)} inputs padded by ${p}`);
          }
          tensors.push({ name: n.name, shape: [n.channels, k, k, c], fanIn: k * k * c, at: n.at });
          shape = [Math.floor((h + 2 * p - k) / n.stride) + 1, Math.floor((w + 2 * p - k) / n.stride) + 1, n.channels];
          break;
        }
        case "max_pool":
        case "avg_pool": {
          const im = image();
          if (!im) return fail(`needs images [H, W, C], found ${shapeText(shape)}`);
          const [h, w, c] = im;
          if (h < n.size || w < n.size) {
            return fail(`a ${n.size}×${n.size} window does not fit ${shapeText(shape)} inputs`);
          }
          shape = [Math.floor((h - n.size) / n.stride) + 1, Math.floor((w - n.size) / n.stride) + 1, c];
          break;
        }
        case "global_avg_pool": {
          const im = image();
          if (!im) return fail(`needs images [H, W, C], found ${shapeText(shape)}`);
          shape = [im[2]];
          break;
        }
        case "flatten":
          shape = [shape.reduce((a, b) => a * b, 1)];
          break;
        case "residual": {
          const body = walk(n.body, shape);
          if (!body) return null;
          let short: number[] | null = shape;
          if (n.shortcut === "option_a") {
            const im = image();
            if (!im) return fail(`shortcut option_a needs images [H, W, C], found ${shapeText(shape)}`);
            const cout = body[body.length - 1]!;
            if (body.length !== 3 || cout < im[2]) {
              return fail(
                `shortcut option_a pads ${shapeText(shape)} to more channels, but block '${n.block}' ` +
                  `gives ${shapeText(body)}`,
              );
            }
            short = [Math.ceil(im[0] / 2), Math.ceil(im[1] / 2), cout];
          } else if (n.shortcut !== "identity") {
            short = walk(n.shortcut, shape);
            if (!short) return null;
          }
          if (shapeText(body) !== shapeText(short)) {
            const what = n.shortcut === "identity"
              ? `the identity shortcut keeps ${shapeText(short)}; use \`shortcut: option_a\` or a projection block`
              : `the shortcut gives ${shapeText(short)}`;
            return fail(`block '${n.block}' turns ${shapeText(shape)} into ${shapeText(body)}, but ${what}`);
          }
          shape = body;
          break;
        }
        default: // relu, gelu, batch_norm, layer_norm keep the shape
          break;
      }
    }
    return shape;
  };
  const out = walk(nodes, inShape);
  if (out && out.reduce((a, b) => a * b, 1) !== classes) {
    const last = nodes[nodes.length - 1]!;
    issues.push({
      path: last.at,
      message: `the network ends in ${shapeText(out)} values, expected ${classes} (the dataset's classes): end ` +
        "with `linear: classes`",
    });
  }
  return { tensors, out: out ?? [], issues };
}

/** Input shape and classes of the datasets whose images have a fixed size (idx files have their own). */
export const DATASET_INPUTS: Readonly<Record<string, { shape: number[]; classes: number }>> = {
  mnist: { shape: [28, 28, 1], classes: 10 },
  "fashion-mnist": { shape: [28, 28, 1], classes: 10 },
  cifar10: { shape: [32, 32, 3], classes: 10 },
  synthetic: { shape: [8, 8, 1], classes: 4 },
};

/**
 * The checks of a custom network that need its inputs: layers that fit the dataset's images (where their size is
 * fixed), at most `maxWidth` units or channels per layer and `maxDepth` layers once blocks are expanded.
 */
export function checkCustomOnData(
  model: CustomModel,
  dataset: string,
  limits: { maxWidth: number; maxDepth: number },
): NetIssue[] {
  if (model.architecture !== "custom" || model.layers === undefined || !wellFormed(model)) return [];
  const { nodes, issues } = resolveCustom(model);
  if (issues.length) return [];
  const out: NetIssue[] = [];
  let depth = 0;
  const visit = (list: Node[]) => {
    for (const n of list) {
      depth++;
      const width = n.kind === "linear" ? n.units : n.kind === "conv2d" ? n.channels : undefined;
      if (typeof width === "number" && width > limits.maxWidth) {
        out.push({
          path: [...n.at, n.kind],
          message: `expected at most ${limits.maxWidth.toLocaleString("en-US")} (limits.max_width), found ` +
            `${width.toLocaleString("en-US")}; lower it, or raise the limit with \`limits: { max_width: N }\``,
        });
      }
      if (n.kind === "residual") {
        visit(n.body);
        if (Array.isArray(n.shortcut)) visit(n.shortcut);
      }
    }
  };
  visit(nodes);
  if (depth > limits.maxDepth) {
    out.push({
      path: ["layers"],
      message: `expected at most ${limits.maxDepth.toLocaleString("en-US")} layers (limits.max_depth), found ` +
        `${depth.toLocaleString("en-US")} with the blocks expanded; raise the limit with \`limits: { max_depth: N }\``,
    });
  }
  const input = DATASET_INPUTS[dataset];
  if (input && !out.length) out.push(...planCustom(nodes, input.shape, input.classes).issues);
  return out;
}

/** A layer list as one line, for reports: `conv2d 32 (k3 s1 p1), relu, max_pool 2/2, flatten, linear classes`. */
export function layersText(layers: readonly Layer[]): string {
  return layers.map((l) => {
    if (typeof l === "string") return l;
    if ("linear" in l) return `linear ${l.linear.units}${l.linear.name ? ` '${l.linear.name}'` : ""}`;
    if ("conv2d" in l) {
      const c = l.conv2d;
      return `conv2d ${c.channels} (k${c.kernel} s${c.stride} p${c.padding})${c.name ? ` '${c.name}'` : ""}`;
    }
    if ("max_pool" in l) return `max_pool ${l.max_pool.size}/${l.max_pool.stride}`;
    if ("avg_pool" in l) return `avg_pool ${l.avg_pool.size}/${l.avg_pool.stride}`;
    const r = l.residual;
    return `residual ${r.block}${r.shortcut === "identity" ? "" : ` (shortcut ${r.shortcut})`}${
      r.relu ? " + relu" : ""
    }` +
      (r.name ? ` '${r.name}'` : "");
  }).join(", ");
}
