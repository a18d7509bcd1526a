// The HTTP API's breaking-change check, as `buf breaking` is the proto's:
// compares docs/openapi.json with docs/openapi.published.json (what shipped
// apps were built against) and lists every change that can break a client.
//   bun scripts/openapi-breaking.ts [--published <file>] [--current <file>]
// Exit 1 when there is one. The rules, by direction:
// - what clients send (parameters, request bodies) may not narrow: no removed
//   operation, parameter or field, no new required one, no narrower type, enum,
//   bound, length, pattern or format, no closed object that was open;
// - what clients read (success responses) may not lose anything: no removed
//   status, media type, header or field, no field that becomes optional, no
//   wider type. New enum values and error codes are not breaking: clients must
//   accept values they do not know (the document says so, as proto3 does).
import { join } from "node:path";
import { parseCommandLine } from "../core/config/command-line";

type Json = Record<string, unknown>;
type Direction = "request" | "response";

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const isObject = (value: unknown): value is Json =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** Follows local `$ref`s (`#/components/...`) until a plain node. */
function deref(doc: Json, node: unknown): Json {
  let current = node;
  const seen = new Set<string>();
  while (isObject(current) && typeof current.$ref === "string" && !seen.has(current.$ref)) {
    seen.add(current.$ref);
    current = current.$ref
      .replace(/^#\//, "")
      .split("/")
      .reduce<unknown>(
        (at, key) => (isObject(at) ? at[key.replace(/~1/g, "/").replace(/~0/g, "~")] : undefined),
        doc,
      );
  }
  return isObject(current) ? current : {};
}

function typesOf(schema: Json): Set<string> {
  const declared = schema.type;
  if (typeof declared === "string") return new Set([declared]);
  if (Array.isArray(declared)) return new Set(declared as string[]);
  if (isObject(schema.properties)) return new Set(["object"]);
  return new Set();
}

/** `a` holds every value `b` holds ("number" holds "integer"); an empty set holds anything. */
function typesCover(a: Set<string>, b: Set<string>): boolean {
  if (a.size === 0) return true;
  if (b.size === 0) return false;
  return [...b].every((type) => a.has(type) || (type === "integer" && a.has("number")));
}

function enumOf(schema: Json): unknown[] | undefined {
  if (Array.isArray(schema.enum)) return schema.enum;
  return "const" in schema ? [schema.const] : undefined;
}

const LOWER_BOUNDS = ["minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"];
const UPPER_BOUNDS = ["maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"];

class Comparison {
  readonly changes: string[] = [];
  constructor(
    readonly before: Json,
    readonly after: Json,
  ) {}

  private report(where: string, what: string): void {
    this.changes.push(`${where}: ${what}`);
  }

  schema(oldNode: unknown, newNode: unknown, direction: Direction, where: string): void {
    const old = deref(this.before, oldNode);
    const now = deref(this.after, newNode);
    const [oldTypes, newTypes] = [typesOf(old), typesOf(now)];
    const fits =
      direction === "request" ? typesCover(newTypes, oldTypes) : typesCover(oldTypes, newTypes);
    if (!fits) {
      const how = direction === "request" ? "narrowed" : "widened";
      this.report(where, `type ${how} from ${[...oldTypes]} to ${[...newTypes]}`);
      return;
    }
    if (direction === "request") this.narrowing(old, now, where);
    this.objects(old, now, direction, where);
    if (old.items !== undefined || now.items !== undefined)
      this.schema(old.items, now.items, direction, `${where}[]`);
    for (const key of ["anyOf", "oneOf", "allOf"]) {
      const [a, b] = [old[key], now[key]];
      if (!Array.isArray(a) && !Array.isArray(b)) continue;
      const [was, is] = [Array.isArray(a) ? a : [], Array.isArray(b) ? b : []];
      if (direction === "request" && key !== "allOf" && is.length < was.length)
        this.report(where, `${key} lost alternatives (${was.length} → ${is.length})`);
      if (direction === "response" && key !== "allOf" && is.length > was.length)
        this.report(where, `${key} gained alternatives (${was.length} → ${is.length})`);
      for (let i = 0; i < Math.min(was.length, is.length); i += 1)
        this.schema(was[i], is[i], direction, `${where}(${key}[${i}])`);
    }
  }

  /** What a client may send shrank: enum, bounds, pattern, format. */
  private narrowing(old: Json, now: Json, where: string): void {
    const [was, is] = [enumOf(old), enumOf(now)];
    if (is !== undefined) {
      const lost = was === undefined ? ["(any value)"] : was.filter((v) => !is.includes(v));
      if (lost.length > 0)
        this.report(where, `no longer accepts ${lost.map((v) => JSON.stringify(v)).join(", ")}`);
    }
    for (const bound of LOWER_BOUNDS) {
      const [a, b] = [old[bound], now[bound]];
      if (typeof b === "number" && (typeof a !== "number" || b > a))
        this.report(where, `${bound} raised from ${a ?? "none"} to ${b}`);
    }
    for (const bound of UPPER_BOUNDS) {
      const [a, b] = [old[bound], now[bound]];
      if (typeof b === "number" && (typeof a !== "number" || b < a))
        this.report(where, `${bound} lowered from ${a ?? "none"} to ${b}`);
    }
    for (const rule of ["pattern", "format", "multipleOf"]) {
      if (now[rule] !== undefined && now[rule] !== old[rule])
        this.report(
          where,
          `${rule} changed from ${JSON.stringify(old[rule] ?? null)} to ${JSON.stringify(now[rule])}`,
        );
    }
  }

  private objects(old: Json, now: Json, direction: Direction, where: string): void {
    const oldProps = isObject(old.properties) ? old.properties : {};
    const newProps = isObject(now.properties) ? now.properties : {};
    const oldRequired = new Set(Array.isArray(old.required) ? (old.required as string[]) : []);
    const newRequired = new Set(Array.isArray(now.required) ? (now.required as string[]) : []);
    const field = (name: string) => (where.endsWith(":") ? `${where} ${name}` : `${where}.${name}`);
    for (const name of Object.keys(oldProps)) {
      if (!(name in newProps)) {
        this.report(
          field(name),
          direction === "request" ? "field no longer accepted" : "field removed",
        );
        continue;
      }
      if (direction === "request" && newRequired.has(name) && !oldRequired.has(name))
        this.report(field(name), "field became required");
      if (direction === "response" && oldRequired.has(name) && !newRequired.has(name))
        this.report(field(name), "field no longer always present");
      this.schema(oldProps[name], newProps[name], direction, field(name));
    }
    if (direction === "request") {
      for (const name of Object.keys(newProps))
        if (!(name in oldProps) && newRequired.has(name))
          this.report(field(name), "new required field");
      if (old.additionalProperties !== false && now.additionalProperties === false)
        this.report(where, "no longer accepts fields beyond those listed");
    }
  }
}

/** `/v1/orders/{id}/status` and `/v1/orders/{orderId}/status` are one operation. */
const pathShape = (path: string) => path.replace(/\{[^}]+\}/g, "{}");

function operations(doc: Json): Map<string, { label: string; operation: Json; pathItem: Json }> {
  const found = new Map<string, { label: string; operation: Json; pathItem: Json }>();
  for (const [path, item] of Object.entries(isObject(doc.paths) ? doc.paths : {})) {
    const pathItem = deref(doc, item);
    for (const method of METHODS) {
      if (isObject(pathItem[method]))
        found.set(`${method} ${pathShape(path)}`, {
          label: `${method.toUpperCase()} ${path}`,
          operation: pathItem[method] as Json,
          pathItem,
        });
    }
  }
  return found;
}

function parameters(doc: Json, pathItem: Json, operation: Json): Map<string, Json> {
  const list = [
    ...(Array.isArray(pathItem.parameters) ? pathItem.parameters : []),
    ...(Array.isArray(operation.parameters) ? operation.parameters : []),
  ].map((p) => deref(doc, p));
  const byKey = new Map<string, Json>();
  let pathIndex = 0;
  for (const parameter of list) {
    const name = String(parameter.name);
    // Path parameters by position (a rename is not a break); headers ignore case.
    const key =
      parameter.in === "path"
        ? `path #${pathIndex++}`
        : `${parameter.in} ${parameter.in === "header" ? name.toLowerCase() : name}`;
    byKey.set(key, parameter);
  }
  return byKey;
}

function compareOperation(
  c: Comparison,
  label: string,
  old: Json,
  now: Json,
  oldItem: Json,
  newItem: Json,
): void {
  const oldSecurity = Array.isArray(old.security)
    ? old.security
    : ((c.before.security as unknown[] | undefined) ?? []);
  const newSecurity = Array.isArray(now.security)
    ? now.security
    : ((c.after.security as unknown[] | undefined) ?? []);
  if (oldSecurity.length === 0 && newSecurity.length > 0)
    c.changes.push(`${label}: now requires authentication`);

  const oldParams = parameters(c.before, oldItem, old);
  const newParams = parameters(c.after, newItem, now);
  for (const [key, parameter] of oldParams) {
    const current = newParams.get(key);
    const where = `${label}: ${parameter.in} parameter ${String(parameter.name)}`;
    if (!current) c.changes.push(`${where}: removed`);
    else {
      if (current.required === true && parameter.required !== true)
        c.changes.push(`${where}: became required`);
      c.schema(parameter.schema, current.schema, "request", where);
    }
  }
  for (const [key, parameter] of newParams)
    if (!oldParams.has(key) && parameter.required === true)
      c.changes.push(`${label}: new required ${parameter.in} parameter ${String(parameter.name)}`);

  const oldBody = deref(c.before, old.requestBody);
  const newBody = deref(c.after, now.requestBody);
  if (newBody.required === true && oldBody.required !== true)
    c.changes.push(`${label}: request body became required`);
  const oldContent = isObject(oldBody.content) ? oldBody.content : {};
  const newContent = isObject(newBody.content) ? newBody.content : {};
  for (const [type, media] of Object.entries(oldContent)) {
    const current = newContent[type];
    if (!isObject(current)) c.changes.push(`${label}: request body no longer accepts ${type}`);
    else c.schema((media as Json).schema, current.schema, "request", `${label}: request body:`);
  }

  const oldResponses = isObject(old.responses) ? old.responses : {};
  const newResponses = isObject(now.responses) ? now.responses : {};
  for (const [status, response] of Object.entries(oldResponses)) {
    if (!/^2/.test(status)) continue;
    const where = `${label}: response ${status}`;
    if (!(status in newResponses)) {
      c.changes.push(`${where}: removed`);
      continue;
    }
    const [was, is] = [deref(c.before, response), deref(c.after, newResponses[status])];
    const newHeaders = isObject(is.headers) ? is.headers : {};
    for (const name of Object.keys(isObject(was.headers) ? was.headers : {}))
      if (!Object.keys(newHeaders).some((h) => h.toLowerCase() === name.toLowerCase()))
        c.changes.push(`${where}: header ${name} removed`);
    const wasContent = isObject(was.content) ? was.content : {};
    const isContent = isObject(is.content) ? is.content : {};
    for (const [type, media] of Object.entries(wasContent)) {
      const current = isContent[type];
      if (!isObject(current)) c.changes.push(`${where}: no longer ${type}`);
      else c.schema((media as Json).schema, current.schema, "response", `${where}:`);
    }
  }
}

/** Every change from `published` to `current` that can break a client built against `published`. */
export function breakingChanges(published: Json, current: Json): string[] {
  const comparison = new Comparison(published, current);
  const now = operations(current);
  for (const [key, { label, operation, pathItem }] of operations(published)) {
    const match = now.get(key);
    if (!match) comparison.changes.push(`${label}: operation removed`);
    else compareOperation(comparison, label, operation, match.operation, pathItem, match.pathItem);
  }
  return comparison.changes;
}

if (import.meta.main) {
  const docs = join(import.meta.dir, "..", "docs");
  const values = parseCommandLine(
    {
      usage: "bun scripts/openapi-breaking.ts [--published <file>] [--current <file>]",
      summary:
        "Lists the changes from the published OpenAPI document that can break a client; exit 1 if any.",
      flags: {
        published: { default: join(docs, "openapi.published.json"), help: "what shipped apps use" },
        current: { default: join(docs, "openapi.json"), help: "the document as built" },
      },
    },
    Bun.argv.slice(2),
  );
  const read = async (file: string) => (await Bun.file(file).json()) as Json;
  const changes = breakingChanges(await read(values.published), await read(values.current));
  for (const change of changes) console.error(change);
  if (changes.length > 0) {
    console.error(
      `${changes.length} breaking change(s) against ${values.published}. Keep the old shape beside the new one, or ship a new version (see README, "The HTTP API").`,
    );
    process.exit(1);
  }
  console.log("no breaking change against the published OpenAPI document");
}
