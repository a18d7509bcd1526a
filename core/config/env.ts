/**
 * Typed readers for environment variables. Each throws a ConfigError naming
 * the variable and the rule it broke; none silently falls back on bad input.
 */

export type Env = Readonly<Record<string, string | undefined>>;

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    rule: string,
    value: string | undefined,
  ) {
    super(`${variable}: ${rule} (got ${value === undefined ? "nothing" : JSON.stringify(value)})`);
    this.name = "ConfigError";
  }
}

function present(env: Env, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw.trim() === "" ? undefined : raw.trim();
}

export function readString(env: Env, name: string, fallback: string): string {
  return present(env, name) ?? fallback;
}

export function readOptionalString(env: Env, name: string): string | undefined {
  return present(env, name);
}

export function readInt(
  env: Env,
  name: string,
  fallback: number,
  bounds: { min?: number; max?: number } = {},
): number {
  const raw = present(env, name);
  if (raw === undefined) return fallback;
  if (!/^-?\d+$/.test(raw)) throw new ConfigError(name, "must be an integer", raw);
  const value = Number(raw);
  const { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = bounds;
  if (value < min || value > max) {
    throw new ConfigError(name, `must be between ${min} and ${max}`, raw);
  }
  return value;
}

export function readPort(env: Env, name: string, fallback: number): number {
  return readInt(env, name, fallback, { min: 0, max: 65535 });
}

export function readBool(env: Env, name: string, fallback: boolean): boolean {
  const raw = present(env, name);
  if (raw === undefined) return fallback;
  if (raw === "true" || raw === "1") return true;
  if (raw === "false" || raw === "0") return false;
  throw new ConfigError(name, "must be true, false, 1 or 0", raw);
}

export function readUrl(env: Env, name: string, protocols: readonly string[]): string | undefined {
  const raw = present(env, name);
  if (raw === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(name, "must be a URL", raw);
  }
  if (!protocols.includes(url.protocol)) {
    throw new ConfigError(name, `must use ${protocols.join(" or ")}`, raw);
  }
  return raw;
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Parses `host:port,host:port` lists (REDIS_CLUSTER_NODES, KAFKA_BROKERS). */
export function readHostPorts(env: Env, name: string): HostPort[] | undefined {
  const raw = present(env, name);
  if (raw === undefined) return undefined;
  return raw.split(",").map((part) => {
    const match = /^\s*([^\s:]+|\[[0-9a-fA-F:]+\]):(\d{1,5})\s*$/.exec(part);
    const port = Number(match?.[2]);
    if (!match?.[1] || port < 1 || port > 65535) {
      throw new ConfigError(name, "must be a comma-separated list of host:port", raw);
    }
    return { host: match[1], port };
  });
}
