import { isMap, isScalar, LineCounter, parseDocument } from "yaml";
import type { Document } from "yaml";
import { z } from "zod";
import { SpecError, type SpecIssue } from "../util/errors.ts";
import { didYouMean } from "../util/did_you_mean.ts";
import { type MethodName, METHODS, PARAMETER_NAMES, type SweepSpec, SweepSpecSchema } from "./schema.ts";
import { parameterAppliesTo, parseParameterKey, resolveTrialConfig, sweepMethods } from "./expand.ts";

/**
 * Parses and validates a sweep spec from YAML text.
 *
 * @param text The YAML source.
 * @param file The file name used in error messages.
 * @returns The validated spec with defaults filled in.
 * @throws {SpecError} listing every problem of the file, each with field path, line and column.
 */
export function parseSpec(text: string, file = "<spec>"): SweepSpec {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new SpecError(
      file,
      doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return { path: "", line: pos.line, column: pos.col, message: `YAML syntax: ${firstLine(e.message)}` };
      }),
    );
  }
  const raw = doc.toJS() ?? {};
  const locate = (path: (string | number)[], key?: string) => locateNode(doc, lineCounter, path, key);
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new SpecError(file, [{
      path: "",
      ...locate([]),
      message: "expected a mapping of fields, found " + typeOf(raw),
    }]);
  }
  const issues: SpecIssue[] = [];
  const parsed = SweepSpecSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) issues.push(...describeIssue(issue, locate, valueAt(raw, issue.path)));
  }
  const params = (raw as Record<string, unknown>).parameters;
  if (params && typeof params === "object" && !Array.isArray(params)) {
    for (const key of Object.keys(params)) {
      const message = checkParameterKey(key);
      if (message) issues.push({ path: `parameters.${key}`, ...locate(["parameters"], key), message });
    }
  }
  if (issues.length === 0 && parsed.success) {
    issues.push(...checkParameterScopes(parsed.data, locate));
  }
  if (issues.length === 0 && parsed.success) {
    issues.push(...checkParameterValues(parsed.data, locate));
  }
  if (issues.length > 0 || !parsed.success) {
    issues.sort((a, b) => a.line - b.line || a.column - b.column);
    throw new SpecError(file, issues);
  }
  return parsed.data;
}

/** Reads and parses a spec file. */
export async function loadSpec(path: string): Promise<SweepSpec> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
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
