import { join } from "node:path";
import pino from "pino";
import { loadTrackingConfig } from "../../tracking/config";
import { startTracking, type TrackingApp } from "../../tracking/tracking-app";
import { exitedBeforeReady, freePort, retryIfPortTaken } from "./free-port";
import { TEST_JWT_SECRET, uniqueId } from "./tokens";
import { waitUntil } from "./wait";

export interface TestTrackingNode {
  readonly app: TrackingApp;
  readonly id: string;
  readonly url: string;
  readonly httpUrl: string;
  stop(): Promise<void>;
}

/**
 * TRACKING_NODE_TTL_MS of the nodes and gateways a test runs in its own
 * process. Their heartbeats and ring reads run on the test's event loop, so
 * a stall of that process (a full suite's GC under load: 1-3 s seen) would
 * drop a live node from every ring for a tick with a short TTL (lookups
 * 503, watchers `moved`). A test whose node must age out passes a short TTL
 * itself (a killed child process, watched by an in-process ring).
 */
export const IN_PROCESS_NODE_TTL_MS = "15000";
/**
 * TRACKING_NODE_TTL_MS of node processes (spawnTrackingProcess): they beat on
 * their own event loop, and the tests kill them and wait for the rings to
 * drop them. An in-process gateway reading their ring passes the same TTL.
 */
export const PROCESS_NODE_TTL_MS = "1000";

/** Starts a tracking node in this process on a free port (or `env.TRACKING_PORT`), registered in the given Redis. */
export async function startTestTracking(env: Record<string, string>): Promise<TestTrackingNode> {
  const port = env.TRACKING_PORT ? Number(env.TRACKING_PORT) : await freePort();
  const id = uniqueId("t");
  const url = `ws://127.0.0.1:${port}`;
  const config = loadTrackingConfig({
    JWT_SECRET: TEST_JWT_SECRET,
    TRACKING_PORT: String(port),
    TRACKING_NODE_ID: id,
    TRACKING_PUBLIC_URL: url,
    TRACKING_HEARTBEAT_MS: "100",
    TRACKING_RING_REFRESH_MS: "100",
    TRACKING_NODE_TTL_MS: IN_PROCESS_NODE_TTL_MS,
    TRACKING_UNSUBSCRIBE_AFTER_MS: "0",
    ...env,
  });
  const app = await startTracking(config, pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }));
  let stopped = false;
  return {
    app,
    id,
    url,
    httpUrl: `http://127.0.0.1:${port}`,
    async stop() {
      if (stopped) return;
      stopped = true;
      await app.drain();
    },
  };
}

/** A watcher's socket with every frame and the close recorded. */
export interface TestWatcher {
  /** Each frame parsed: text as JSON, binary by the `binary` option. */
  readonly frames: unknown[];
  /** Each frame as it arrived (text, or the binary bytes). */
  readonly rawFrames: (string | Uint8Array)[];
  readonly protocol: string;
  /** Resolves with the close code and reason. */
  readonly closed: Promise<{ code: number; reason: string }>;
  /** Resolves once `count` frames have arrived (rejects after the deadline). */
  waitForFrames(count: number, timeoutMs?: number): Promise<unknown[]>;
  close(): void;
}

export async function openWatcher(
  url: string,
  options: {
    headers?: Record<string, string>;
    protocols?: string[];
    binary?: (data: Uint8Array) => unknown;
  } = {},
): Promise<TestWatcher> {
  const socket = new WebSocket(url, {
    headers: options.headers,
    protocols: options.protocols,
  } as unknown as string[]);
  socket.binaryType = "arraybuffer";
  const frames: unknown[] = [];
  const rawFrames: (string | Uint8Array)[] = [];
  const waiters = new Set<() => void>();
  socket.addEventListener("message", (event) => {
    const data = event.data;
    rawFrames.push(typeof data === "string" ? data : new Uint8Array(data as ArrayBuffer));
    frames.push(
      typeof data === "string"
        ? JSON.parse(data)
        : options.binary?.(new Uint8Array(data as ArrayBuffer)),
    );
    for (const wake of waiters) wake();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    socket.addEventListener("close", (event) => {
      resolve({ code: event.code, reason: event.reason });
      for (const wake of waiters) wake();
    });
  });
  await new Promise<void>((resolve, reject) => {
    socket.addEventListener("open", () => resolve(), { once: true });
    socket.addEventListener(
      "close",
      (event) => reject(new Error(`closed before open (${event.code})`)),
      { once: true },
    );
    socket.addEventListener("error", () => reject(new Error("websocket error")), { once: true });
  });
  return {
    frames,
    rawFrames,
    protocol: socket.protocol,
    closed,
    waitForFrames(count, timeoutMs = 5_000) {
      if (frames.length >= count) return Promise.resolve(frames);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `expected ${count} frames, got ${frames.length}: ${JSON.stringify(frames.slice(-3))}`,
            ),
          );
        }, timeoutMs);
        const check = () => {
          if (frames.length < count) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(frames);
        };
        waiters.add(check);
      });
    },
    close: () => socket.close(),
  };
}

/** An answer's header names, sorted: what two answers that must look alike are compared on. */
export function headerNames(response: Response): string[] {
  return [...response.headers.keys()].sort();
}

/** The HTTP status a refused watch request gets (before any upgrade). */
export async function refusalStatus(
  httpUrl: string,
  path: string,
  headers: Record<string, string> = {},
) {
  const response = await fetch(`${httpUrl}${path}`, {
    headers: {
      connection: "Upgrade",
      upgrade: "websocket",
      "sec-websocket-version": "13",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      ...headers,
    },
  });
  return {
    status: response.status,
    body: (await response.json()) as {
      error: { code: string; message: string; requestId: string };
    },
    headerNames: headerNames(response),
    retryAfter: response.headers.get("retry-after"),
  };
}

/** A tracking node running as its own process (`tracking/main.ts`), with its log lines kept. */
export interface TrackingProcess {
  readonly pid: number;
  readonly url: string;
  readonly httpUrl: string;
  /** Every JSON log line written so far. */
  readonly logs: { level: number; msg: string; [field: string]: unknown }[];
  /** The process's resident set size now, and its peak so far (VmHWM), from /proc. */
  rssBytes(): Promise<{ now: number; peak: number }>;
  /** One metric family's text from the node's /metrics. */
  metric(name: string): Promise<string>;
  /** The exit code, once the process has exited by itself or by a signal. */
  readonly exited: Promise<number>;
  /** Sends a signal (SIGSTOP/SIGCONT: a stall) without waiting. */
  signal(name: NodeJS.Signals): void;
  /** SIGTERM (the node drains), then wait for the exit code. */
  stop(): Promise<number>;
  /** SIGKILL: a crash, no drain. */
  kill(): Promise<void>;
}

/**
 * A node process on a free port (another while the one picked turns out
 * taken), or on `env.TRACKING_PORT` (a restart on the same address).
 */
export async function spawnTrackingProcess(env: Record<string, string>): Promise<TrackingProcess> {
  if (env.TRACKING_PORT) return spawnTrackingOn(Number(env.TRACKING_PORT), env);
  return retryIfPortTaken(async () => spawnTrackingOn(await freePort(), env));
}

async function spawnTrackingOn(
  port: number,
  env: Record<string, string>,
): Promise<TrackingProcess> {
  const url = `ws://127.0.0.1:${port}`;
  const httpUrl = `http://127.0.0.1:${port}`;
  const child = Bun.spawn(
    [process.execPath, join(import.meta.dir, "..", "..", "tracking", "main.ts")],
    {
      env: {
        ...process.env,
        JWT_SECRET: TEST_JWT_SECRET,
        TRACKING_PORT: String(port),
        TRACKING_NODE_ID: uniqueId("t"),
        TRACKING_PUBLIC_URL: url,
        TRACKING_HEARTBEAT_MS: "100",
        TRACKING_RING_REFRESH_MS: "100",
        TRACKING_NODE_TTL_MS: PROCESS_NODE_TTL_MS,
        LOG_LEVEL: "debug",
        ...env,
      },
      stdout: "pipe",
      stderr: "inherit",
    },
  );
  const logs: TrackingProcess["logs"][number][] = [];
  (async () => {
    let pending = "";
    for await (const chunk of child.stdout) {
      pending += new TextDecoder().decode(chunk);
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) if (line.trim()) logs.push(JSON.parse(line));
    }
  })();
  let exitCode: number | undefined;
  void child.exited.then((code) => {
    exitCode = code;
  });
  // Not ready if it exited: a listener that is not this node may answer on its port.
  await waitUntil(
    async () =>
      exitCode !== undefined ||
      (await fetch(`${httpUrl}/healthz`).catch(() => undefined))?.ok === true,
    10_000,
    "tracking process listening",
  );
  if (exitCode !== undefined) throw await exitedBeforeReady("tracking process", [port], exitCode);
  return {
    pid: child.pid,
    url,
    httpUrl,
    logs,
    async rssBytes() {
      const status = await Bun.file(`/proc/${child.pid}/status`).text();
      const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1]);
      return { now: kib("VmRSS") * 1024, peak: kib("VmHWM") * 1024 };
    },
    async metric(name) {
      const text = await (await fetch(`${httpUrl}/metrics`)).text();
      return text
        .split("\n")
        .filter((line) => line.startsWith(name))
        .join("\n");
    },
    exited: child.exited,
    signal: (name) => child.kill(name),
    async stop() {
      child.kill("SIGTERM");
      return child.exited;
    },
    async kill() {
      child.kill("SIGKILL");
      await child.exited;
    },
  };
}
