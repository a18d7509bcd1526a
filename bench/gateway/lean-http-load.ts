// A lean HTTP/1.1 load generator for the gateway bench: keep-alive TCP
// connections (Bun.connect), one prebuilt request, responses counted by
// status line and Content-Length, latencies in microseconds.
//   Open loop (--rate N): request i is due at start + i/N whatever the
//   server does; it goes out on an idle connection, or waits for the next
//   one to free up. Its latency runs from its due time, not from when it
//   was written, so a stalled server is charged for every request it held
//   back (no coordinated omission). Sends happen on the event loop's timer
//   ticks: how late a request left its due time is reported apart
//   (`sendLagMs`), and is part of the latency.
//   Closed loop (--rate 0): each connection sends its next request as soon
//   as the answer to the last arrives, as fast as the server goes.
//   bun bench/gateway/lean-http-load.ts --url http://127.0.0.1:8080/healthz --seconds 10
//     [--rate 10000] [--connections 100] [--token <jwt>]   → one JSON line (LeanLoadResult)
import { parseArgs } from "node:util";
import type { Socket } from "bun";

export interface LeanLoadOptions {
  url: string;
  seconds: number;
  /** Requests per second on a fixed schedule; 0 = closed loop. */
  rate: number;
  connections: number;
  headers?: Record<string, string>;
  /** Stop sending after this many requests (the test's bounded runs); the run still waits for their answers. */
  maxRequests?: number;
  /**
   * Builds each request's bytes (a whole HTTP/1.1 request) for the connection
   * numbered `connection`, instead of one prebuilt GET of `url`: for calls
   * whose body changes (a rider's next seq, on its own connection).
   */
  requestFor?: (connection: number) => Uint8Array;
}

export interface LeanLoadResult {
  requestsPerSecond: number;
  /** From the due time (open loop) or the write (closed loop) to the answer's last byte. */
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number };
  /** Open loop: how late requests were written after their due time (the tool's own share of the latency). */
  sendLagMs: { p50: number; p99: number; max: number };
  sent: number;
  answered: number;
  non2xx: number;
  /** Requests never answered (connection lost, unparsable answer, or still open 2 s after the run). */
  errors: number;
}

const HEADER_END = Buffer.from("\r\n\r\n");
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i;
const DRAIN_GRACE_MS = 2_000;

interface Connection {
  readonly index: number;
  socket: Socket<undefined> | undefined;
  /** The bytes of an answer not complete yet. */
  pending: Buffer | undefined;
  /** Due time (ms, performance.now) and write time of the request awaiting its answer; NaN when idle. */
  dueAt: number;
}

function quantiles(sorted: Float64Array) {
  const at = (q: number) =>
    sorted.length === 0
      ? Number.NaN
      : (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN);
  return { at, max: sorted.length === 0 ? Number.NaN : (sorted[sorted.length - 1] ?? Number.NaN) };
}

const round3 = (ms: number) => Math.round(ms * 1000) / 1000;

/** Runs one load and resolves with what it measured. */
export async function runLeanLoad(options: LeanLoadOptions): Promise<LeanLoadResult> {
  const { seconds, rate, connections: connectionCount } = options;
  const url = new URL(options.url);
  const head = [
    `GET ${url.pathname}${url.search} HTTP/1.1`,
    `Host: ${url.host}`,
    ...Object.entries(options.headers ?? {}).map(([name, value]) => `${name}: ${value}`),
    "",
    "",
  ].join("\r\n");
  const prebuilt = Buffer.from(head, "latin1");
  const requestFor = options.requestFor ?? (() => prebuilt);
  const maxRequests = options.maxRequests ?? Number.POSITIVE_INFINITY;
  const expected = Math.min(maxRequests, rate > 0 ? Math.ceil(rate * seconds) : maxRequests);
  const latencies: number[] = [];
  const lags: number[] = [];
  let sent = 0;
  let answered = 0;
  let non2xx = 0;
  let errors = 0;
  let sending = true;
  let started = 0;
  /** Open loop: due times of requests waiting for a free connection. */
  const waiting: number[] = [];
  let waitingHead = 0;
  const idle: Connection[] = [];
  let open = 0;
  let settle: (() => void) | undefined;
  /** Open loop: writes every request now due. */
  let pump = () => {};

  const inFlight = () => sent - answered - errors;
  const checkDone = () => {
    if (!sending && inFlight() === 0 && waitingHead === waiting.length) settle?.();
  };

  function write(connection: Connection, dueAt: number): void {
    const socket = connection.socket;
    sent += 1;
    if (!socket) {
      errors += 1;
      return;
    }
    const now = performance.now();
    connection.dueAt = rate > 0 ? dueAt : now;
    if (rate > 0) lags.push(now - dueAt);
    const request = requestFor(connection.index);
    // A request of a few hundred bytes into an empty socket buffer: written whole, or the connection is broken.
    if (socket.write(request) !== request.length) {
      connection.dueAt = Number.NaN;
      errors += 1;
      socket.end();
    }
  }

  /** A connection is free: the oldest waiting request (open loop) or the next one (closed loop), else idle. */
  function free(connection: Connection): void {
    connection.dueAt = Number.NaN;
    if (rate > 0) {
      if (waitingHead < waiting.length) write(connection, waiting[waitingHead++] as number);
      else idle.push(connection);
    } else if (sending && sent < maxRequests) write(connection, 0);
    checkDone();
  }

  function onData(connection: Connection, data: Buffer): void {
    let buffer = connection.pending ? Buffer.concat([connection.pending, data]) : data;
    for (;;) {
      const headerEnd = buffer.indexOf(HEADER_END);
      if (headerEnd < 0) break;
      const header = buffer.toString("latin1", 0, headerEnd);
      const length = CONTENT_LENGTH.exec(header);
      const status = Number(header.slice(9, 12));
      if (!length || !header.startsWith("HTTP/1.1 ") || !Number.isInteger(status)) {
        // No Content-Length (chunked) or no HTTP: the stream cannot be followed; the request is lost.
        connection.pending = undefined;
        errors += 1;
        connection.dueAt = Number.NaN;
        connection.socket?.end();
        checkDone();
        return;
      }
      const total = headerEnd + HEADER_END.length + Number(length[1]);
      if (buffer.length < total) break;
      latencies.push(performance.now() - connection.dueAt);
      answered += 1;
      if (status < 200 || status > 299) non2xx += 1;
      buffer = buffer.subarray(total);
      free(connection);
      if (buffer.length === 0) break;
    }
    connection.pending = buffer.length > 0 ? Buffer.from(buffer) : undefined;
    if (sending) pump();
  }

  const connections: Connection[] = await Promise.all(
    Array.from({ length: connectionCount }, async (_, index) => {
      const connection: Connection = {
        index,
        socket: undefined,
        pending: undefined,
        dueAt: Number.NaN,
      };
      connection.socket = await Bun.connect({
        hostname: url.hostname,
        port: Number(url.port || 80),
        socket: {
          data: (_socket, data) => onData(connection, data),
          close: () => {
            const lost = !Number.isNaN(connection.dueAt);
            connection.socket = undefined;
            open -= 1;
            // Nothing left to send on: the run is over.
            if (open === 0) sending = false;
            const index = idle.indexOf(connection);
            if (index >= 0) idle.splice(index, 1);
            if (lost) {
              connection.dueAt = Number.NaN;
              errors += 1;
            }
            checkDone();
          },
          error: () => {},
        },
      });
      connection.socket.setNoDelay(true);
      open += 1;
      return connection;
    }),
  );

  const done = new Promise<void>((resolve) => {
    settle = resolve;
  });
  started = performance.now();
  const endAt = started + seconds * 1000;
  if (rate > 0) {
    idle.push(...connections);
    const interval = 1000 / rate;
    let next = 0;
    pump = () => {
      const now = performance.now();
      while (next < expected && started + next * interval <= now) {
        const dueAt = started + next * interval;
        next += 1;
        const connection = idle.pop();
        if (connection) write(connection, dueAt);
        else waiting.push(dueAt);
      }
      if (sending && (next >= expected || now >= endAt)) {
        sending = false;
        checkDone();
      }
    };
    // Bun's timers fire about 1 ms late at best; every answer also pumps, so
    // under load requests leave within microseconds of their due time.
    const tick = () => {
      pump();
      if (sending) setTimeout(tick, Math.max(0, started + next * interval - performance.now() - 1));
    };
    tick();
  } else {
    for (const connection of connections) if (sent < maxRequests) write(connection, 0);
    const stop = setInterval(() => {
      if (performance.now() >= endAt || sent >= maxRequests) {
        clearInterval(stop);
        sending = false;
        checkDone();
      }
    }, 5);
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    done,
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, seconds * 1000 + DRAIN_GRACE_MS);
    }),
  ]);
  clearTimeout(timer);
  const elapsedMs = Math.min(performance.now(), endAt) - started;
  // Whatever is still unanswered or never sent after the grace is lost.
  errors += inFlight() + (waiting.length - waitingHead);
  for (const connection of connections) connection.socket?.end();

  const sortedLatencies = Float64Array.from(latencies).sort();
  const latency = quantiles(sortedLatencies);
  const lag = quantiles(Float64Array.from(lags).sort());
  return {
    requestsPerSecond: answered / (Math.max(elapsedMs, 1) / 1000),
    latencyMs: {
      p50: round3(latency.at(0.5)),
      p90: round3(latency.at(0.9)),
      p99: round3(latency.at(0.99)),
      p999: round3(latency.at(0.999)),
      max: round3(latency.max),
    },
    sendLagMs: { p50: round3(lag.at(0.5)), p99: round3(lag.at(0.99)), max: round3(lag.max) },
    sent,
    answered,
    non2xx,
    errors,
  };
}

if (import.meta.main) {
  const { values: args } = parseArgs({
    options: {
      url: { type: "string", default: "http://127.0.0.1:8080/healthz" },
      seconds: { type: "string", default: "10" },
      rate: { type: "string", default: "0" },
      connections: { type: "string", default: "100" },
      token: { type: "string" },
    },
  });
  const result = await runLeanLoad({
    url: args.url ?? "",
    seconds: Number(args.seconds),
    rate: Number(args.rate),
    connections: Number(args.connections),
    headers: args.token ? { authorization: `Bearer ${args.token}` } : {},
  });
  console.log(JSON.stringify(result));
  process.exit(0);
}
