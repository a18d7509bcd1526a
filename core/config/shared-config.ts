import { isIP } from "node:net";
import { hostname } from "node:os";
import {
  ConfigError,
  type Env,
  readHostPorts,
  readInt,
  readOptionalString,
  readString,
  readUrl,
} from "./env";

/** A node's name in shared state (locks, live figures): `name` or `<host>-<pid>`. */
export function readNodeId(env: Env, name: string): string {
  return readString(env, name, `${hostname()}-${process.pid}`);
}

/**
 * The address a tier's listeners bind (`BIND_HOST`): loopback unless told
 * otherwise, so a process started by hand is not reachable from the network
 * by accident. The images set 0.0.0.0; `::` binds every IPv6 and IPv4 address.
 */
export function readBindHost(env: Env): string {
  const host = readString(env, "BIND_HOST", "127.0.0.1");
  if (isIP(host) === 0 && !/^[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*$/.test(host))
    throw new ConfigError("BIND_HOST", "must be an IP address or a host name", host);
  return host;
}

/** Where Redis is: a cluster wins over a standalone URL (docs/contract.md). */
export type RedisConfig =
  | { readonly mode: "cluster"; readonly nodes: readonly { host: string; port: number }[] }
  | { readonly mode: "standalone"; readonly url: string };

export function loadRedisConfig(env: Env): RedisConfig {
  const nodes = readHostPorts(env, "REDIS_CLUSTER_NODES");
  if (nodes) return Object.freeze({ mode: "cluster", nodes });
  const url = readUrl(env, "REDIS_URL", ["redis:", "rediss:"]);
  if (!url)
    throw new ConfigError("REDIS_URL", "is required when REDIS_CLUSTER_NODES is unset", undefined);
  return Object.freeze({ mode: "standalone", url });
}

/** How tokens are verified: an HS256 secret in development, a JWKS in production. */
export interface AuthConfig {
  readonly secret?: string;
  /** The identity provider's key set and how it is fetched (core/auth/jwks-keys.ts). */
  readonly jwks?: {
    readonly url: string;
    readonly timeoutMs: number;
    readonly refetchMinMs: number;
    readonly refreshMs: number;
  };
  /** `iss` and `aud` every token must carry; both required with a JWKS. */
  readonly issuer?: string;
  readonly audience?: string;
}

export function loadAuthConfig(env: Env): AuthConfig {
  const secret = readOptionalString(env, "JWT_SECRET");
  const jwksUrl = readUrl(env, "JWT_JWKS_URL", ["https:", "http:"]);
  if (!secret && !jwksUrl) {
    throw new ConfigError("JWT_SECRET", "is required when JWT_JWKS_URL is unset", undefined);
  }
  if (secret && secret.length < 32) {
    throw new ConfigError("JWT_SECRET", "must be at least 32 characters", "<hidden>");
  }
  const issuer = readOptionalString(env, "JWT_ISSUER");
  const audience = readOptionalString(env, "JWT_AUDIENCE");
  // An identity provider signs tokens for many clients and APIs with the same keys: without
  // both checks, its ID tokens and other services' access tokens would be taken here too.
  if (jwksUrl && !issuer)
    throw new ConfigError("JWT_ISSUER", "is required with JWT_JWKS_URL", undefined);
  if (jwksUrl && !audience)
    throw new ConfigError("JWT_AUDIENCE", "is required with JWT_JWKS_URL", undefined);
  return Object.freeze({
    secret,
    ...(jwksUrl
      ? {
          jwks: {
            url: jwksUrl,
            timeoutMs: readInt(env, "JWT_JWKS_TIMEOUT_MS", 1_500, { min: 50, max: 30_000 }),
            refetchMinMs: readInt(env, "JWT_JWKS_REFETCH_MIN_MS", 10_000, {
              min: 100,
              max: 3_600_000,
            }),
            refreshMs: readInt(env, "JWT_JWKS_REFRESH_MS", 600_000, {
              min: 1_000,
              max: 86_400_000,
            }),
          },
        }
      : {}),
    issuer,
    audience,
  });
}

export function loadKafkaBrokers(env: Env): string[] | undefined {
  return readHostPorts(env, "KAFKA_BROKERS")?.map(({ host, port }) => `${host}:${port}`);
}

/**
 * The live-age bound (`PING_MAX_LIVE_AGE_MS`): the ingest refuses live pings
 * older than this, and after this long without an accepted ping a rider's
 * seq may restart; tracking nodes apply the same restart rule to the
 * positions they forward (core/position/rider-position.ts). Set it alike on
 * both tiers.
 */
export function readLiveAgeMs(env: Env): number {
  return readInt(env, "PING_MAX_LIVE_AGE_MS", 120_000, { min: 1_000 });
}

/** The failed-authentication limit per client address (core/limits/auth-failure-limit.ts). */
export interface AuthFailureConfig {
  readonly authFailureLimit: number;
  readonly authFailureWindowMs: number;
  /** A header whose rightmost entry is the client address (set by the balancer); unset: the TCP peer. */
  readonly clientAddressHeader?: string;
}

/**
 * One count per client address across the gateway, the tracking nodes and
 * the ingest: set `AUTH_FAILURE_*` alike on all three. `addressHeaderVariable`
 * names the tier's own header variable (each tier sits behind its own
 * balancer route).
 */
export function loadAuthFailureConfig(env: Env, addressHeaderVariable: string): AuthFailureConfig {
  const header = readOptionalString(env, addressHeaderVariable);
  if (header !== undefined && !/^[A-Za-z0-9-]{1,64}$/.test(header))
    throw new ConfigError(addressHeaderVariable, "must be a header name", header);
  return {
    authFailureLimit: readInt(env, "AUTH_FAILURE_LIMIT", 30, { min: 1 }),
    authFailureWindowMs: readInt(env, "AUTH_FAILURE_WINDOW_MS", 60_000, { min: 1_000 }),
    ...(header === undefined ? {} : { clientAddressHeader: header.toLowerCase() }),
  };
}
