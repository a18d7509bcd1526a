import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
} from "cockatiel";
import { EdgeError } from "../core/errors/edge-error";
import type { BreakerState } from "./metrics";

export interface UpstreamOptions {
  /** Names the service in messages and logs ("order service"). */
  readonly name: string;
  readonly baseUrl: string;
  /** Headers and the whole body within this, else 504. */
  readonly timeoutMs: number;
  /** A body larger than this is 502. */
  readonly maxBodyBytes: number;
  /** Consecutive failures (5xx, timeout, unreachable, bad body) that open the breaker. */
  readonly breakerFailures: number;
  /** How long the breaker stays open before one probe may pass. */
  readonly breakerOpenMs: number;
  /**
   * Told of every call once it ends: how long it took and, for a failed one,
   * the code the client gets (502, 504, and 503 while the breaker is open).
   */
  readonly onCall?: (seconds: number, failure?: UpstreamFailure) => void;
  /** Told of the breaker's state when created (closed) and on every change. */
  readonly onBreakerState?: (state: BreakerState) => void;
}

/** An upstream answer read in full: status and the parsed JSON body (undefined when empty). */
export interface UpstreamAnswer {
  readonly status: number;
  readonly body: unknown;
  readonly headers: Headers;
}

export interface UpstreamService {
  /**
   * Calls `path` and hands the full answer to `accept`, which returns what
   * the caller needs or throws EdgeError `upstream_failed` for a body that is
   * not what the service promised (that counts against the breaker, as do
   * 5xx, timeouts and network failures; other refusals do not).
   */
  call<T>(
    path: string,
    init: RequestInit & { requestId: string },
    accept: (answer: UpstreamAnswer) => T,
  ): Promise<T>;
}

const UPSTREAM_FAULTS = new Set(["upstream_failed", "upstream_timeout"]);

export type UpstreamFailure = "upstream_failed" | "upstream_timeout" | "upstream_unavailable";

function failureOf(error: unknown): UpstreamFailure | undefined {
  if (!(error instanceof EdgeError)) return undefined;
  const { code } = error;
  return code === "upstream_failed" ||
    code === "upstream_timeout" ||
    code === "upstream_unavailable"
    ? code
    : undefined;
}

/**
 * One upstream service behind a circuit breaker (cockatiel). Every failure
 * is an EdgeError with the error shape: 502 `upstream_failed` (unreachable,
 * 5xx, not JSON, truncated, too large or wrongly shaped), 504
 * `upstream_timeout` (no full answer in time, a stall after the headers
 * included), 503 `upstream_unavailable` with Retry-After while the breaker
 * is open or its one half-open probe is still running (so callers never
 * queue behind the probe). The request id goes upstream as X-Request-Id.
 */
export function createUpstreamService(options: UpstreamOptions): UpstreamService {
  const { name, baseUrl, timeoutMs, maxBodyBytes, breakerOpenMs } = options;
  const breaker = circuitBreaker(
    handleWhen((error) => error instanceof EdgeError && UPSTREAM_FAULTS.has(error.code)),
    { halfOpenAfter: breakerOpenMs, breaker: new ConsecutiveBreaker(options.breakerFailures) },
  );
  let openedAt = 0;
  breaker.onBreak(() => {
    openedAt = Date.now();
  });
  const { onCall, onBreakerState } = options;
  if (onBreakerState) {
    onBreakerState("closed");
    breaker.onStateChange((state) =>
      onBreakerState(
        state === CircuitState.Closed
          ? "closed"
          : state === CircuitState.HalfOpen
            ? "half_open"
            : "open",
      ),
    );
  }

  function unavailable(cause?: unknown): EdgeError {
    const leftMs = Math.max(0, openedAt + breakerOpenMs - Date.now());
    return new EdgeError("upstream_unavailable", `the ${name} is failing; try again shortly`, {
      cause,
      retryAfterSeconds: Math.max(1, Math.ceil(leftMs / 1000)),
    });
  }

  async function fetchAnswer(path: string, init: RequestInit & { requestId: string }) {
    const { requestId, ...rest } = init;
    const headers = new Headers(rest.headers);
    headers.set("x-request-id", requestId);
    try {
      const response = await fetch(`${baseUrl}${path}`, {
        ...rest,
        headers,
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await readCapped(response, maxBodyBytes, name);
      if (response.status >= 500)
        throw new EdgeError("upstream_failed", `the ${name} failed (${response.status})`);
      return { status: response.status, body: parseJson(text, name), headers: response.headers };
    } catch (error) {
      if (error instanceof EdgeError) throw error;
      if (error instanceof Error && error.name === "TimeoutError")
        throw new EdgeError("upstream_timeout", `the ${name} did not answer in time`, {
          cause: error,
        });
      throw new EdgeError("upstream_failed", `the ${name} is unreachable or cut the answer`, {
        cause: error,
      });
    }
  }

  return {
    async call(path, init, accept) {
      const started = performance.now();
      try {
        if (breaker.state === CircuitState.HalfOpen) throw unavailable();
        let answer: Awaited<ReturnType<typeof accept>>;
        try {
          answer = await breaker.execute(async () => accept(await fetchAnswer(path, init)));
        } catch (error) {
          if (error instanceof BrokenCircuitError) throw unavailable(error);
          throw error;
        }
        onCall?.((performance.now() - started) / 1000);
        return answer;
      } catch (error) {
        onCall?.((performance.now() - started) / 1000, failureOf(error));
        throw error;
      }
    },
  };
}

/** The body as text, refusing (502) one over `maxBytes` without holding more than that. */
async function readCapped(response: Response, maxBytes: number, name: string): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw new EdgeError("upstream_failed", `the ${name} answered over ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function parseJson(text: string, name: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new EdgeError("upstream_failed", `the ${name} answered a body that is not JSON`, {
      cause: error,
    });
  }
}
