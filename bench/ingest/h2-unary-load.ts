// A small HTTP/2 (h2c) load of unary calls for the ingest benches: one
// connection, `riders` callers each making one call after another (closed
// loop, rate 0) or spaced so that all of them together make `rate` calls/s.
import http2 from "node:http2";

export interface H2UnaryLoadOptions {
  url: string;
  path: string;
  seconds: number;
  rate: number;
  riders: number;
  /** The next call of `rider`: its headers and body. */
  callFor(rider: number): { headers: Record<string, string>; body: Uint8Array };
}

export interface H2UnaryLoadResult {
  callsPerSecond: number;
  answered: number;
  failed: number;
  latencyMs: { p50: number; p99: number };
}

export async function runH2UnaryLoad(options: H2UnaryLoadOptions): Promise<H2UnaryLoadResult> {
  const { url, path, seconds, rate, riders, callFor } = options;
  const session = http2.connect(url);
  await new Promise<void>((resolve, reject) => {
    session.once("connect", () => resolve());
    session.once("error", reject);
  });
  const latencies: number[] = [];
  let failed = 0;

  /** One call; true when it succeeded (HTTP 200 and, for gRPC, status 0). */
  const call = (rider: number) =>
    new Promise<boolean>((resolve) => {
      const { headers, body } = callFor(rider);
      const request = session.request({ ":method": "POST", ":path": path, ...headers });
      let status = 0;
      let grpcStatus: string | undefined;
      request.on("response", (head) => {
        status = Number(head[":status"]);
        grpcStatus = head["grpc-status"] as string | undefined;
      });
      request.on("trailers", (trailers) => {
        grpcStatus = trailers["grpc-status"] as string | undefined;
      });
      request.on("data", () => undefined);
      request.on("end", () => resolve(status === 200 && (grpcStatus ?? "0") === "0"));
      request.on("error", () => resolve(false));
      request.end(body);
    });

  const started = performance.now();
  const endsAt = started + seconds * 1_000;
  const intervalMs = rate > 0 ? (riders * 1_000) / rate : 0;
  await Promise.all(
    Array.from({ length: riders }, async (_, rider) => {
      let dueAt = started + (intervalMs * rider) / riders;
      while (dueAt < endsAt) {
        const wait = dueAt - performance.now();
        if (wait > 0) await Bun.sleep(wait);
        const sentAt = performance.now();
        if (await call(rider)) latencies.push(performance.now() - sentAt);
        else failed += 1;
        dueAt = intervalMs > 0 ? dueAt + intervalMs : performance.now();
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1_000;
  session.close();
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return {
    callsPerSecond: latencies.length / elapsed,
    answered: latencies.length,
    failed,
    latencyMs: { p50: at(0.5), p99: at(0.99) },
  };
}
