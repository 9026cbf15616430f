import { isAlias, isCollection, isMap, isPair, isScalar, LineCounter, parseDocument } from "yaml";
import type { Document } from "yaml";
import { z } from "zod";
import { SpecError, type SpecIssue } from "../util/errors.ts";
import { didYouMean } from "../util/did_you_mean.ts";
import {
  fmtCount,
  MAX_ALIAS_VALUES,
  MAX_SPEC_BYTES,
  MAX_YAML_DEPTH,
  type MethodName,
  METHODS,
  PARAMETER_NAMES,
  type SweepSpec,
  SweepSpecSchema,
} from "./schema.ts";
import {
  parameterAppliesTo,
  parseParameterKey,
  resolveTrialConfig,
  sweepMethods,
  tooManyTrialsMessage,
} from "./expand.ts";

/**
 * Parses and validates a sweep spec from YAML text.
 *
 * @param text The YAML source.
 * @param file The file name used in error messages.
 * @returns The validated spec with defaults filled in.
 * @throws {SpecError} listing every problem of the file, each with field path, line and column.
 */
export function parseSpec(text: string, file = "<spec>"): SweepSpec {
  if (text.length > MAX_SPEC_BYTES) {
    throw new SpecError(file, [{
      path: "",
      line: 1,
      column: 1,
      message: tooLargeMessage(`${fmtCount(text.length)} characters`),
    }]);
  }
  // The YAML parser recurses per nesting level: 10,000 `[` overflow its stack, so look before parsing.
  const lineCounter = new LineCounter();
  const peak = nestingPeak(text, 2 * MAX_YAML_DEPTH);
  if (peak.depth > 2 * MAX_YAML_DEPTH) {
    throw new SpecError(file, [{ path: "", ...offsetPos(text, peak.offset), message: TOO_DEEP }]);
  }
  let doc: Document.Parsed;
  try {
    doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  } catch (e) {
    // a stack overflow the look-ahead missed
    const why = (e as Error).message;
    throw new SpecError(file, [{ path: "", ...offsetPos(text, peak.offset), message: `${TOO_DEEP} (${why})` }]);
  }
  if (doc.errors.length > 0) {
    throw new SpecError(
      file,
      doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return { path: "", line: pos.line, column: pos.col, message: `YAML syntax: ${firstLine(e.message)}` };
      }),
    );
  }
  const shape = checkYamlShape(doc, lineCounter);
  if (shape) throw new SpecError(file, [shape]);
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_VALUES }) ?? {};
  } catch (e) {
    throw new SpecError(file, [{ path: "", line: 1, column: 1, message: `YAML: ${(e as Error).message}` }]);
  }
  const locate = (path: (string | number)[], key?: string) => locateNode(doc, lineCounter, path, key);
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new SpecError(file, [{
      path: "",
      ...locate([]),
      message: "expected a mapping of fields, found " + typeOf(raw),
    }]);
  }
  // YAML reads `.inf`, `-.inf`, `.nan` (and 1e400) as numbers that JSON cannot carry: each is one problem, and the
  // checks below see the spec without them
  const nonFinite = nonFiniteIssues(raw, doc, text, locate);
  const issues: SpecIssue[] = [...nonFinite];
  const finite = nonFinite.length ? withoutNonFinite(raw) : raw;
  const parsed = SweepSpecSchema.safeParse(finite);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      for (const i of describeIssue(issue, locate, valueAt(raw, issue.path))) {
        // a field that is only missing, or its parent incomplete, because its non-finite number was left out
        if (!nonFinite.some((n) => under(i.path, n.path) || under(n.path, i.path))) issues.push(i);
      }
    }
  }
  const params = (raw as Record<string, unknown>).parameters;
  if (params && typeof params === "object" && !Array.isArray(params)) {
    for (const key of Object.keys(params)) {
      const message = checkParameterKey(key);
      if (message) issues.push({ path: `parameters.${key}`, ...locate(["parameters"], key), message });
    }
  }
  // The later checks need a valid spec. Without one they run on the spec with the fields found bad left out
  // (their defaults in place), so one round reports every problem it can find; a problem at a field already
  // reported is not reported twice, and the method's scope is judged only when the method itself is valid.
  const data = parsed.success && !nonFinite.length ? parsed.data : prunedSpec(finite, parsed);
  const later = (found: SpecIssue[]) => {
    for (const i of found) if (!issues.some((j) => under(i.path, j.path))) issues.push(i);
  };
  const methodBad = issues.some((i) => /^(method|parameters\.method)(\.|$)/.test(i.path));
  const pruned = data !== undefined && data !== (parsed.success ? parsed.data : undefined);
  /** A check of the spec without its bad fields that trips over what is left out reports nothing more. */
  const tolerant = (check: () => SpecIssue[]) => {
    try {
      return check();
    } catch (e) {
      if (pruned) return [];
      throw e;
    }
  };
  if (data && !methodBad) later(tolerant(() => checkParameterScopes(data, locate)));
  let tooManyFound = false;
  if (data) {
    // counted, not expanded: a 10⁹-trial grid is refused here in microseconds
    const tooMany = tooManyTrialsMessage(data);
    const parsed = { data }; // the spec the counts are of (the valid one, or the one without its bad fields)
    if (tooMany) {
      // at search.samples for random search, else at the `parameters` (or `seeds`) key
      const [path, at] = parsed.data.search.strategy === "random"
        ? ["search.samples", locate(["search", "samples"])]
        : parsed.data.search.strategy === "adaptive"
        ? parsed.data.search.budget === undefined
          ? ["search.budget_epochs", locate(["search", "budget_epochs"])]
          : ["search.budget", locate(["search", "budget"])]
        : Object.keys(parsed.data.parameters).length
        ? ["parameters", locate([], "parameters")]
        : ["seeds", locate([], "seeds")];
      later([{ path, ...at, message: tooMany }]);
      tooManyFound = true;
    }
  }
  if (data && !tooManyFound) later(tolerant(() => checkParameterValues(data, locate)));
  if (issues.length > 0 || !parsed.success) {
    issues.sort((a, b) => a.line - b.line || a.column - b.column);
    throw new SpecError(file, issues);
  }
  return parsed.data;
}

/** Reads and parses a spec file; one larger than {@link MAX_SPEC_BYTES} is refused unread. */
export async function loadSpec(path: string): Promise<SweepSpec> {
  let text: string;
  try {
    const bytes = await readAtMost(path, MAX_SPEC_BYTES + 1);
    if (bytes.length > MAX_SPEC_BYTES) {
      const size = await Deno.stat(path).then((s) => s.size).catch(() => 0);
      throw new SpecError(path, [{
        path: "",
        line: 1,
        column: 1,
        message: tooLargeMessage(
          `${size > MAX_SPEC_BYTES ? "" : "more than "}${fmtCount(Math.max(size, MAX_SPEC_BYTES))} bytes`,
        ),
      }]);
    }
    text = new TextDecoder().decode(bytes);
  } catch (e) {
    if (e instanceof SpecError) throw e;
    throw new SpecError(path, [{
      path: "",
      line: 0,
      column: 0,
      message: `cannot read the file (${(e as Error).message}); check the path`,
    }]);
  }
  return parseSpec(text, path);
}

type Locate = (path: (string | number)[], key?: string) => { line: number; column: number };

/** Whether the field at `path` is the one at `at` or inside it (`a.b.c` is under `a.b`). */
const under = (path: string, at: string) => path === at || path.startsWith(`${at}.`);

/** A copy of a parsed YAML value without its non-finite numbers (left out, so defaults apply). */
function withoutNonFinite(raw: unknown): unknown {
  if (typeof raw === "number") return Number.isFinite(raw) ? raw : undefined;
  if (Array.isArray(raw)) return raw.map(withoutNonFinite);
  if (raw !== null && typeof raw === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(raw)) {
      const w = withoutNonFinite(v);
      if (w !== undefined) out[k] = w;
    }
    return out;
  }
  return raw;
}

/**
 * The spec with every field the schema refused left out (an unknown key dropped, a bad value removed so its
 * default applies; a bad list element drops its list), for the checks that need a valid spec; undefined when it
 * still does not validate after three rounds (a required field was the bad one).
 */
function prunedSpec(raw: unknown, first: z.SafeParseReturnType<unknown, SweepSpec>): SweepSpec | undefined {
  if (first.success) return first.data;
  const copy = structuredClone(raw) as Record<string, unknown>;
  let issues = first.error.issues;
  for (let round = 0; round < 3; round++) {
    for (const i of issues) {
      const paths = i.code === "unrecognized_keys" ? i.keys.map((k) => [...i.path, k]) : [i.path];
      for (let p of paths) {
        const at = p.findIndex((seg) => typeof seg === "number");
        if (at >= 0) p = p.slice(0, at); // inside a list: the whole list goes
        if (p.length === 0) return undefined;
        let node: unknown = copy;
        for (const seg of p.slice(0, -1)) node = (node as Record<string, unknown> | undefined)?.[seg as string];
        if (node && typeof node === "object") delete (node as Record<string, unknown>)[p.at(-1) as string];
      }
    }
    const again = SweepSpecSchema.safeParse(copy);
    if (again.success) return again.data;
    issues = again.error.issues;
  }
  return undefined;
}

/** The first `max` bytes of a file, without reading the rest (a huge file, a device, a pipe). */
async function readAtMost(path: string, max: number): Promise<Uint8Array> {
  const file = await Deno.open(path);
  try {
    const buf = new Uint8Array(max);
    let n = 0;
    while (n < max) {
      const got = await file.read(buf.subarray(n));
      if (got === null) break;
      n += got;
    }
    return buf.subarray(0, n);
  } finally {
    file.close();
  }
}

function tooLargeMessage(found: string): string {
  return `a spec file is at most 1 MiB (${fmtCount(MAX_SPEC_BYTES)} bytes), found ${found}; ` +
    "a sweep spec is a few KB: keep data and long notes out of it";
}

const TOO_DEEP = `YAML nested more than ${MAX_YAML_DEPTH} levels deep here (collections inside collections); ` +
  "a sweep spec needs about 4";

/** The line and column of a text offset. */
function offsetPos(text: string, offset: number): { line: number; column: number } {
  let line = 1, from = 0;
  for (let i = text.indexOf("\n"); i >= 0 && i < offset; i = text.indexOf("\n", i + 1)) {
    line++;
    from = i + 1;
  }
  return { line, column: offset - from + 1 };
}

/**
 * An estimate of the YAML's nesting depth from its text, without the parser (which recurses per level and
 * overflows its stack near 1,000): open flow brackets, block indentation levels, compact `- `/`? ` entries and
 * node properties. Stops at the first point deeper than `stopAbove`.
 *
 * @returns the deepest point seen (or the first above `stopAbove`) as a depth and a text offset.
 */
function nestingPeak(text: string, stopAbove: number): { depth: number; offset: number } {
  const indents: number[] = [];
  let flow = 0, props = 0, peak = { depth: 0, offset: 0 };
  let blockScalar = -1; // inside a block scalar whose parent line is indented this much
  const n = text.length;
  const isSpace = (c: string | undefined) => c === undefined || c === " " || c === "\t" || c === "\r" || c === "\n";
  const note = (offset: number) => {
    const depth = indents.length + flow + props;
    if (depth > peak.depth) peak = { depth, offset };
    return depth > stopAbove;
  };
  let i = 0;
  while (i < n) {
    let end = text.indexOf("\n", i);
    if (end < 0) end = n;
    let j = i;
    while (j < end && text[j] === " ") j++;
    const indent = j - i;
    const blank = j === end || text[j] === "#" || text[j] === "\r";
    if (blockScalar >= 0 && (blank || indent > blockScalar)) {
      i = end + 1;
      continue;
    }
    blockScalar = -1;
    if (blank) {
      i = end + 1;
      continue;
    }
    if (flow === 0) {
      while (indents.length > 0 && indents[indents.length - 1]! > indent) indents.pop();
      if (indents.length === 0 || indents[indents.length - 1]! < indent) indents.push(indent);
    }
    let start = true; // at the start of a node, where indicators and quotes count
    props = 0;
    for (; j < end; j++) {
      const c = text[j]!;
      if (c === " " || c === "\t" || c === "\r") continue;
      if (c === "#" && isSpace(text[j - 1])) break;
      if (start && (c === '"' || c === "'")) {
        // a quoted scalar, perhaps over several lines
        let k = j + 1;
        for (; k < n; k++) {
          if (c === '"' && text[k] === "\\") k++; // an escape
          else if (text[k] === c && c === "'" && text[k + 1] === "'") k++; // '' in single quotes
          else if (text[k] === c) break;
        }
        j = k;
        if (j >= end) {
          end = text.indexOf("\n", j);
          if (end < 0) end = n;
        }
        start = false;
        continue;
      }
      if ((c === "[" || c === "{") && (start || flow > 0)) {
        flow++;
        if (note(j)) return peak;
        start = true;
        props = 0;
        continue;
      }
      if ((c === "]" || c === "}") && flow > 0) {
        flow--;
        start = false;
        continue;
      }
      if (c === "," && flow > 0) {
        start = true;
        props = 0;
        continue;
      }
      const entry = (c === "-" || c === "?") && start && isSpace(text[j + 1]);
      if (entry || (c === ":" && (isSpace(text[j + 1]) || flow > 0))) {
        if (entry && flow === 0) {
          let k = j + 1;
          while (k < end && text[k] === " ") k++;
          indents.push(k - i); // a compact collection inside this entry
          if (note(j)) return peak;
        }
        start = true;
        props = 0;
        continue;
      }
      if (start && (c === "&" || c === "!")) {
        props++;
        if (note(j)) return peak;
        while (j + 1 < end && !isSpace(text[j + 1])) j++;
        continue;
      }
      if (start && flow === 0 && (c === "|" || c === ">")) {
        blockScalar = indent;
        break;
      }
      start = false;
      if (flow > 0) {
        // a plain scalar in a flow collection ends at a flow indicator
        while (j + 1 < end && !",[]{}".includes(text[j + 1]!) && !(text[j + 1] === ":" && isSpace(text[j + 2]))) {
          if (text[j + 1] === "#" && isSpace(text[j])) break;
          j++;
        }
      }
    }
    if (note(Math.min(j, n))) return peak;
    i = end + 1;
  }
  return peak;
}

/**
 * What the YAML parser accepts but a spec must not be: an alias to no anchor or to a node that holds it,
 * aliases that expand to more than {@link MAX_ALIAS_VALUES} values (an alias bomb), and nesting deeper than
 * {@link MAX_YAML_DEPTH} (aliases included). One pass, without recursion.
 */
function checkYamlShape(doc: Document.Parsed, lc: LineCounter): SpecIssue | undefined {
  type Item = { node: unknown; open: boolean };
  const at = (node: unknown) => {
    const range = (node as { range?: [number, number, number] }).range;
    return range ? pos(lc, range[0]) : { line: 1, column: 1 };
  };
  const height = new Map<unknown, number>();
  const size = new Map<unknown, number>();
  const anchors = new Map<string, unknown>();
  const target = new Map<unknown, unknown>();
  const children = (node: unknown): unknown[] =>
    isPair(node) ? [node.key, node.value] : isCollection(node) ? (node.items as unknown[]) : [];
  let added = 0;
  const stack: Item[] = [{ node: doc.contents, open: false }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const node = top.node;
    if (node === null || node === undefined || typeof node !== "object") {
      stack.pop();
      continue;
    }
    if (!top.open) {
      top.open = true;
      const anchor = (node as { anchor?: string }).anchor;
      if (anchor) anchors.set(anchor, node);
      if (isAlias(node)) {
        const source = anchors.get(node.source);
        if (source === undefined) {
          return {
            path: "",
            ...at(node),
            message: `YAML alias *${node.source} has no anchor &${node.source} before it`,
          };
        }
        target.set(node, source);
      }
      const kids = children(node);
      for (let k = kids.length - 1; k >= 0; k--) stack.push({ node: kids[k], open: false });
      continue;
    }
    stack.pop();
    if (isAlias(node)) {
      const source = target.get(node);
      const h = height.get(source), s = size.get(source);
      if (h === undefined || s === undefined) {
        return { path: "", ...at(node), message: `YAML alias *${node.source} refers to a node that contains it` };
      }
      added += s;
      if (added > MAX_ALIAS_VALUES) {
        return {
          path: "",
          ...at(node),
          message: `YAML aliases expand to more than ${fmtCount(MAX_ALIAS_VALUES)} values by here ` +
            `(*${node.source} alone is ${fmtCount(s)}): an alias bomb? A spec may reuse anchors for at most ` +
            `${fmtCount(MAX_ALIAS_VALUES)} values in all`,
        };
      }
      height.set(node, h);
      size.set(node, s);
      continue;
    }
    let h = 0, s = isPair(node) ? 0 : 1;
    for (const kid of children(node)) {
      h = Math.max(h, height.get(kid) ?? 0);
      s += size.get(kid) ?? 0;
    }
    height.set(node, isCollection(node) ? h + 1 : h);
    size.set(node, s);
  }
  if ((height.get(doc.contents) ?? 0) <= MAX_YAML_DEPTH) return undefined;
  // walk down the deepest path to the first collection past the limit
  let node: unknown = doc.contents;
  for (let depth = 1; depth <= MAX_YAML_DEPTH && !isAlias(node); depth++) {
    let deepest: unknown = undefined;
    for (const kid of children(node).flatMap((k) => isPair(k) ? [k.key, k.value] : [k])) {
      if ((height.get(kid) ?? 0) > (height.get(deepest) ?? -1)) deepest = kid;
    }
    if (deepest === undefined) break;
    node = deepest;
  }
  return {
    path: "",
    ...at(node),
    message: `${TOO_DEEP}${isAlias(node) ? ` (through alias *${node.source})` : ""}`,
  };
}

/** A parameter key is a sweepable name, or `<method>.<name>` for a setting of that method only. */
function checkParameterKey(key: string): string | undefined {
  const { scope, name } = parseParameterKey(key);
  if (scope !== undefined && !(METHODS as readonly string[]).includes(scope)) {
    const hint = didYouMean(scope, METHODS);
    return `unknown method '${scope}' in '${key}'${hint ? `: did you mean '${hint}.${name}'?` : ""} ` +
      `(methods: ${METHODS.join(", ")})`;
  }
  if (!(PARAMETER_NAMES as string[]).includes(name)) {
    const hint = didYouMean(name, PARAMETER_NAMES);
    return `unknown parameter '${name}'${hint ? `: did you mean '${scope ? scope + "." : ""}${hint}'?` : ""} ` +
      `(sweepable: ${PARAMETER_NAMES.join(", ")})`;
  }
  if (scope !== undefined && !parameterAppliesTo(name, scope)) {
    return name === "method"
      ? "`method` cannot be scoped to a method"
      : `'${name}' is not a setting of ${scope} (its settings: ${methodSettings(scope)})`;
  }
  return undefined;
}

function methodSettings(m: MethodName): string {
  return PARAMETER_NAMES.filter((n) => parameterAppliesTo(n, m)).join(", ");
}

/** Every swept parameter must mean something to a method the sweep runs; `method` takes a list of names. */
function checkParameterScopes(spec: SweepSpec, locate: Locate): SpecIssue[] {
  const issues: SpecIssue[] = [];
  const methods = sweepMethods(spec);
  const m = spec.parameters["method"];
  if (m && m.values === undefined) {
    issues.push({
      path: "parameters.method",
      ...locate(["parameters"], "method"),
      message: `expected \`values: [...]\` of method names (${METHODS.join(", ")}), found a range`,
    });
  }
  for (const key of Object.keys(spec.parameters)) {
    const { scope, name } = parseParameterKey(key);
    if (name === "method") continue;
    const where = { path: `parameters.${key}`, ...locate(["parameters"], key) };
    if (scope !== undefined && !methods.includes(scope)) {
      issues.push({
        ...where,
        message: `'${key}' is for ${scope}, which this sweep does not run (it runs ${methods.join(", ")})`,
      });
    } else if (scope === undefined && !methods.some((mm) => parameterAppliesTo(name, mm))) {
      const users = METHODS.filter((mm) => parameterAppliesTo(name, mm));
      issues.push({
        ...where,
        message: `'${name}' is a setting of ${users.join(", ")}, but this sweep runs ${methods.join(", ")}; ` +
          `drop it or set method.name`,
      });
    }
  }
  return issues;
}

/**
 * Every number of the spec, wherever it is, must be finite: JSON (sweep.json, the trial messages) writes
 * Infinity and NaN as `null`, which no worker accepts. One pass over the parsed values, without recursion.
 */
function nonFiniteIssues(raw: unknown, doc: Document.Parsed, text: string, locate: Locate): SpecIssue[] {
  const issues: SpecIssue[] = [];
  const stack: { value: unknown; path: (string | number)[] }[] = [{ value: raw, path: [] }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (typeof value === "number") {
      if (Number.isFinite(value)) continue;
      const node = doc.getIn(path, true);
      const range = isScalar(node) ? node.range : undefined;
      const source = range ? text.slice(range[0], range[1]).trim() : "";
      const found = source && !/[\n#]/.test(source)
        ? source
        : Number.isNaN(value)
        ? ".nan"
        : value > 0
        ? ".inf"
        : "-.inf";
      issues.push({ path: path.join("."), ...locate(path), message: `expected a finite number, found ${found}` });
    } else if (Array.isArray(value)) {
      value.forEach((v, i) => stack.push({ value: v, path: [...path, i] }));
    } else if (value !== null && typeof value === "object") {
      for (const [k, v] of Object.entries(value)) stack.push({ value: v, path: [...path, k] });
    }
  }
  return issues.sort((a, b) => a.line - b.line || a.column - b.column);
}

/** Each value of each swept parameter must be valid where it lands (e.g. lr > 0, penalty sum|mean). */
function checkParameterValues(spec: SweepSpec, locate: Locate): SpecIssue[] {
  const issues: SpecIssue[] = [];
  for (const [key, p] of Object.entries(spec.parameters)) {
    const { scope, name } = parseParameterKey(key);
    const probes = p.values ?? [p.min!, p.max!];
    probes.forEach((value, i) => {
      try {
        resolveTrialConfig(spec, scope ? { method: scope, [name]: value } : { [name]: value }, spec.seeds[0]!);
      } catch (e) {
        if (!(e instanceof z.ZodError)) throw e;
        const where = p.values ? ["parameters", key, "values", i] : ["parameters", key, i === 0 ? "min" : "max"];
        for (const zi of e.issues) {
          issues.push({
            path: where.join("."),
            ...locate(where),
            message: `${JSON.stringify(value)} is not a valid ${name}: ${zi.message}`,
          });
        }
      }
    });
  }
  return issues;
}

function describeIssue(issue: z.ZodIssue, locate: Locate, found: unknown): SpecIssue[] {
  const path = issue.path.join(".");
  if (issue.code === "unrecognized_keys") {
    const allowed = allowedKeys(issue.path);
    return issue.keys.map((key) => {
      const hint = didYouMean(key, allowed);
      return {
        path: path ? `${path}.${key}` : key,
        ...locate(issue.path, key),
        message: `unknown field '${key}'${hint ? `: did you mean '${hint}'?` : ""}` +
          (allowed.length ? ` (allowed: ${allowed.join(", ")})` : ""),
      };
    });
  }
  let message = issue.message;
  if (path === "method" && typeof found === "string" && /^(bayes|grid|random)$/i.test(found)) {
    // W&B Sweeps' `method:` is the search strategy; here `method:` is the pruning method
    const strategy = found.toLowerCase() === "bayes" ? "adaptive" : found.toLowerCase();
    return [{
      path,
      ...locate(issue.path),
      message: `\`method: ${found}\` is W&B Sweeps' search method; here it is \`search: {strategy: ${strategy}}\`` +
        ` (grid, random or adaptive; adaptive is the model-based one, like bayes), and \`method:\` is the pruning ` +
        `method, a mapping such as \`method: {name: ${METHODS[0]}}\` (${METHODS.join(", ")})`,
    }];
  }
  if (issue.code === "invalid_type") {
    message = issue.received === "undefined"
      ? `required field is missing (expected ${issue.expected})`
      : `expected ${issue.expected}, found ${issue.received}`;
  } else if (issue.code === "invalid_enum_value") {
    const hint = didYouMean(String(issue.received), issue.options.map(String));
    message = `expected one of ${issue.options.join(", ")}, found '${issue.received}'` +
      (hint ? `: did you mean '${hint}'?` : "");
  } else if (issue.code === "invalid_literal") {
    message = `expected ${JSON.stringify(issue.expected)}, found ${JSON.stringify(issue.received)}`;
  } else if (issue.code === "too_small" && issue.type === "number") {
    message = `expected a number ${issue.inclusive ? ">=" : ">"} ${issue.minimum}, found ${JSON.stringify(found)}`;
  } else if (issue.code === "too_big" && issue.type === "number") {
    message = `expected a number ${issue.inclusive ? "<=" : "<"} ${issue.maximum}, found ${JSON.stringify(found)}`;
  } else if (issue.code === "too_big" && issue.type === "string" && typeof found === "string") {
    message = `expected at most ${fmtCount(Number(issue.maximum))} characters, found ${fmtCount(found.length)}; ` +
      issue.message;
  } else if (issue.code === "invalid_string" || issue.code === "not_multiple_of") {
    message = `${issue.message}, found ${JSON.stringify(found)}`;
  }
  return [{ path, ...locate(issue.path), message }];
}

/** The field names a strict object in the spec schema accepts at a path. */
function allowedKeys(path: (string | number)[]): string[] {
  let schema: z.ZodTypeAny = SweepSpecSchema;
  for (const seg of [...path, null]) {
    for (;;) {
      if (schema instanceof z.ZodDefault) schema = schema._def.innerType;
      else if (schema instanceof z.ZodOptional) schema = schema.unwrap();
      else if (schema instanceof z.ZodEffects) schema = schema.innerType();
      else break;
    }
    if (seg === null) break;
    if (schema instanceof z.ZodObject) schema = schema.shape[seg] ?? z.never();
    else if (schema instanceof z.ZodArray) schema = schema.element;
    else if (schema instanceof z.ZodRecord) schema = schema.valueSchema;
    else return [];
  }
  return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}

function locateNode(
  doc: Document,
  lc: LineCounter,
  path: (string | number)[],
  key?: string,
): { line: number; column: number } {
  // Walk up until an existing node is found; point at the key itself when asked.
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (!node || typeof node !== "object") continue;
    if (key !== undefined && n === path.length && isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
      if (pair && isScalar(pair.key) && pair.key.range) return pos(lc, pair.key.range[0]);
    }
    if (n < path.length && isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(path[n]));
      if (pair && isScalar(pair.key) && pair.key.range) return pos(lc, pair.key.range[0]);
    }
    const range = (node as { range?: [number, number, number] }).range;
    if (range) return pos(lc, range[0]);
  }
  return { line: 1, column: 1 };
}

function pos(lc: LineCounter, offset: number) {
  const p = lc.linePos(offset);
  return { line: p.line, column: p.col };
}

function firstLine(s: string): string {
  return s.split("\n")[0] ?? s;
}

function valueAt(root: unknown, path: (string | number)[]): unknown {
  let v: unknown = root;
  for (const seg of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

function typeOf(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "a list" : typeof v;
}
