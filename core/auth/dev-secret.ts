/**
 * The development JWT secret `./edge demo` keeps in the repo's `.tmp/`
 * (git-ignored, readable by this user only), so `./edge token` signs tokens
 * the running demo accepts without anyone exporting JWT_SECRET. Production
 * never reads it: the tiers take JWT_SECRET or JWT_JWKS_URL only.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { type Env, readString } from "../config/env";

const DEFAULT_FILE = fileURLToPath(new URL("../../.tmp/dev-jwt-secret", import.meta.url));

/** Where the secret is kept: `DEV_JWT_SECRET_FILE`, or `.tmp/dev-jwt-secret` in the repo. */
export function devSecretFile(env: Env): string {
  return readString(env, "DEV_JWT_SECRET_FILE", DEFAULT_FILE);
}

/** A path as a person in the repo's root would type it. */
export function shownPath(file: string): string {
  const shown = relative(process.cwd(), file);
  return shown && !shown.startsWith("..") ? shown : file;
}

/** The secret the demo left, or undefined when there is none (or it is too short to use). */
export function readDevSecret(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  const secret = readFileSync(file, "utf8").trim();
  return secret.length >= 32 ? secret : undefined;
}

/** The demo's secret: the one it left before (tokens minted then stay valid), or a new one. */
export function ensureDevSecret(file: string): string {
  const existing = readDevSecret(file);
  if (existing) return existing;
  const secret = randomBytes(32).toString("hex");
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return secret;
}
