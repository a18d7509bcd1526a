// What apps are told of errors and routes is what the code answers: the
// contract's error table is core/errors/error-codes.ts, every "status `code`"
// and "`GRPC_CODE` (`code`)" pair in a doc is a real one, each code the
// ingest answers is in proto/README.md, the OpenAPI document's error
// responses carry exactly the codes the gateway (and the core it imports)
// can raise, and the route tables list the gateway's operations.
import { describe, expect, test } from "bun:test";
import { ERROR_CODES } from "../../core/errors/error-codes";
import {
  backticked,
  GRPC_NAMES,
  grpcName,
  importClosure,
  readRepoFile as read,
  readDocs,
  sourceText,
  tableRows,
} from "./repo-docs";

const docs = await readDocs();

/** An error response of the OpenAPI document, down to its code's enum. */
type ErrorResponse = {
  content?: Record<
    string,
    { schema?: { properties?: { error?: { properties?: { code?: { enum?: string[] } } } } } }
  >;
};

/**
 * The codes `files` can answer with. Every error body is an EdgeError's
 * (core/errors/error-response.ts), built with a literal code,
 * `new EdgeError("code", ...)`, or from a script's status by
 * core/redis/order-scripts.ts's `expectOk(status, { code: message, ... })`,
 * whose table keys are the statuses it raises. Any other way of building
 * one fails here, so a code cannot reach a client unseen.
 */
function codesRaised(files: Map<string, string>): Set<string> {
  const codes = new Set<string>();
  const unseen: string[] = [];
  for (const [path, text] of files) {
    for (const [, code] of text.matchAll(/new EdgeError\(\s*"([a-z_]+)"/g))
      codes.add(code as string);
    for (const [, table = ""] of text.matchAll(/expectOk\(\s*\w+,\s*\{([\s\S]*?)\}\);/g))
      for (const [, code] of table.matchAll(/^\s*([a-z_]+):/gm)) codes.add(code as string);
    for (const [, argument] of text.matchAll(/new EdgeError\(\s*([^"\s][^,)]*)/g))
      if (`${path}: ${argument}` !== "core/redis/order-scripts.ts: code")
        unseen.push(`${path}: new EdgeError(${argument}`);
  }
  expect({ unseen }).toEqual({ unseen: [] });
  const unknown = [...codes].filter((code) => !(code in ERROR_CODES));
  expect({ unknown }).toEqual({ unknown: [] });
  return codes;
}

describe("error codes", () => {
  test("the contract's error-code table is core/errors/error-codes.ts: code, HTTP status, gRPC code", async () => {
    const rows = [
      ...(await read("docs/contract.md")).matchAll(
        /^\| `([a-z_]+)` +\| (\d{3}) +\| `([A-Z_]+)` +\|/gm,
      ),
    ].map(([, code, http, grpc]) => ({ code, http: Number(http), grpc }));
    const codes = Object.entries(ERROR_CODES).map(([code, { http, connect }]) => ({
      code,
      http,
      grpc: grpcName(connect),
    }));
    const byCode = (a: { code?: string }, b: { code?: string }) =>
      (a.code as string).localeCompare(b.code as string);
    expect(rows.sort(byCode)).toEqual(codes.sort(byCode));
  });

  test('every "`GRPC_CODE` (`code`)" in the docs names a code with that gRPC code', () => {
    const wrong: string[] = [];
    let pairs = 0;
    for (const [path, text] of docs)
      for (const [, grpc, code] of text.matchAll(/`([A-Z_]+)` \((?:error code )?`([a-z_]+)`/g)) {
        if (!GRPC_NAMES.has(grpc as string)) continue;
        pairs++;
        const entry = ERROR_CODES[code as keyof typeof ERROR_CODES];
        if (!entry || grpcName(entry.connect) !== grpc) wrong.push(`${path}: ${grpc} ${code}`);
      }
    expect(wrong).toEqual([]);
    expect(pairs).toBeGreaterThan(10); // proto/README.md's table of codes by RPC, among others
  });

  test("every error code the ingest answers is in proto/README.md, where rider apps look", async () => {
    const ingestSource = await sourceText("location-ingest/**/*.ts", "core/auth/jwks-keys.ts");
    const answered = new Set(
      [...ingestSource.matchAll(/EdgeError\(\s*"([a-z_]+)"/g)].map((m) => m[1] as string),
    );
    expect(answered.size).toBeGreaterThan(10);
    const named = new Set(backticked(docs.get("proto/README.md") as string));
    expect([...answered].filter((code) => !named.has(code))).toEqual([]);
  });

  test('every "<status> `code`" in the docs names a code with that HTTP status', () => {
    const wrong: string[] = [];
    // bench/RESULTS.md puts counts before label names ("200 `not_http2`").
    for (const [path, text] of [...docs].filter(([path]) => path !== "bench/RESULTS.md"))
      for (const [, status, code] of text.matchAll(/\b([1-5]\d\d) `([a-z_]+)`/g)) {
        const entry = ERROR_CODES[code as keyof typeof ERROR_CODES];
        if (entry?.http !== Number(status)) wrong.push(`${path}: ${status} ${code}`);
      }
    expect(wrong).toEqual([]);
  });
});

describe("gateway routes", () => {
  test("the error codes docs/openapi.json declares are exactly those the gateway and the core modules it imports raise", async () => {
    const raised = codesRaised(await importClosure("gateway/**/*.ts"));
    expect(raised.size).toBeGreaterThan(15);
    const document = JSON.parse(await read("docs/openapi.json")) as {
      paths: Record<string, Record<string, { responses?: Record<string, unknown> }>>;
    };
    // Each error response's `error.code` enum: what a client may see, route by route.
    const declared = new Set(
      Object.values(document.paths)
        .flatMap((methods) => Object.values(methods))
        .flatMap((operation) => Object.values(operation.responses ?? {}))
        .flatMap(
          (response) =>
            (response as ErrorResponse).content?.["application/json"]?.schema?.properties?.error
              ?.properties?.code?.enum ?? [],
        ),
    );
    expect({ undeclared: [...raised].filter((code) => !declared.has(code)).sort() }).toEqual({
      undeclared: [],
    });
    expect({ neverRaised: [...declared].filter((code) => !raised.has(code)).sort() }).toEqual({
      neverRaised: [],
    });
  });

  test("the route tables of the README and the contract list exactly the /v1 operations of docs/openapi.json", async () => {
    const document = JSON.parse(await read("docs/openapi.json")) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const operations = Object.entries(document.paths)
      .filter(([path]) => path.startsWith("/v1/"))
      .flatMap(([path, methods]) =>
        Object.keys(methods)
          .filter((method) => ["get", "post", "put", "patch", "delete"].includes(method))
          .map((method) => `${method.toUpperCase()} ${path}`),
      )
      .sort();
    expect(operations.length).toBeGreaterThan(8);
    for (const path of ["README.md", "docs/contract.md"]) {
      // First cells like "`GET /v1/restaurants?lat&lng&q`" or "`PATCH /v1/rides/{orderId} {action, token}`".
      const routes = tableRows(docs.get(path) as string)
        .flatMap(([first]) => backticked(first ?? ""))
        .map((token) => /^([A-Z]+ \/v1\/[^?\s]*)/.exec(token)?.[1])
        .filter((route): route is string => route !== undefined);
      expect([path, [...new Set(routes)].sort()]).toEqual([path, operations]);
    }
  });
});
