// The repo's docs as the docs tests read them: every file an app developer
// or operator is pointed to, and the backticked names in them.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { Code } from "@connectrpc/connect";

export const ROOT = join(import.meta.dir, "..", "..");

export const DOC_PATHS = [
  "README.md",
  "docs/contract.md",
  "docs/mobile-apps.md",
  "docs/performance-notes.md",
  "proto/README.md",
  "docker/README.md",
  "clients/README.md",
  "bench/RESULTS.md",
] as const;

export const readRepoFile = (path: string) => Bun.file(join(ROOT, path)).text();

/**
 * The settings under which the docs tests load each tier's config: HS256
 * with one Redis, and a JWKS (which requires JWT_ISSUER and JWT_AUDIENCE,
 * core/config/shared-config.ts) with a cluster and Kafka, so the variables
 * only those branches read are seen too.
 */
export const CONFIG_BASES = [
  { REDIS_URL: "redis://127.0.0.1:6379", JWT_SECRET: "x".repeat(32) },
  {
    REDIS_CLUSTER_NODES: "127.0.0.1:7000",
    JWT_JWKS_URL: "https://id.example/jwks.json",
    JWT_ISSUER: "https://id.example/",
    JWT_AUDIENCE: "delivery-edge",
    KAFKA_BROKERS: "127.0.0.1:9092",
  },
] as const;

/** Each doc's text by its path. */
export async function readDocs(): Promise<Map<string, string>> {
  return new Map(
    await Promise.all(DOC_PATHS.map(async (path) => [path, await readRepoFile(path)] as const)),
  );
}

/** The text of every `code span` in `text`. */
export const backticked = (text: string) =>
  [...text.matchAll(/`([^`\n]+)`/g)].map((m) => m[1] as string);

/** The rows of every Markdown table in `text` (indented ones too), each as its trimmed cells. */
export function tableRows(text: string): string[][] {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.startsWith("| ") && line.endsWith("|") && !/^\| -/.test(line))
    .map((line) =>
      line
        .slice(1, -1)
        .split("|")
        .map((cell) => cell.trim()),
    );
}

/** `Code.FailedPrecondition` → `FAILED_PRECONDITION`, as gRPC spells it. */
export const grpcName = (code: Code) =>
  Code[code].replace(/(?<=[a-z])(?=[A-Z])/g, "_").toUpperCase();
export const GRPC_NAMES = new Set(
  Object.values(Code)
    .filter((code): code is Code => typeof code === "number")
    .map(grpcName),
);

/** The text of every source file matching the globs: no docs, no tests, no node_modules. */
export async function sourceText(...patterns: string[]): Promise<string> {
  const texts: string[] = [];
  for (const pattern of patterns)
    for await (const path of new Bun.Glob(pattern).scan({ cwd: ROOT, dot: true }))
      if (!path.endsWith(".md") && !path.endsWith(".test.ts") && !path.includes("node_modules"))
        texts.push(await readRepoFile(path));
  return texts.join("\n");
}

/** Every source file matching the globs and every file they import (relative imports, transitively), by path. */
export async function importClosure(...patterns: string[]): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const pending: string[] = [];
  for (const pattern of patterns)
    for await (const path of new Bun.Glob(pattern).scan({ cwd: ROOT }))
      if (path.endsWith(".ts") && !path.endsWith(".test.ts")) pending.push(path);
  for (let path = pending.pop(); path !== undefined; path = pending.pop()) {
    if (files.has(path)) continue;
    const text = await readRepoFile(path);
    files.set(path, text);
    for (const [, specifier = ""] of text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)) {
      const base = join(dirname(path), specifier);
      const target = [base, `${base}.ts`, join(base, "index.ts")].find(
        (candidate) => candidate.endsWith(".ts") && existsSync(join(ROOT, candidate)),
      );
      if (target) pending.push(target);
    }
  }
  return files;
}
