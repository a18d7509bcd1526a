import { createUpstreamFetch } from "../../demo/upstream/upstream-app";

/**
 * The demo's stand-in order and search service, wrapped so tests can count
 * and inspect calls, slow it down, or make it fail. `ordersCreated` lists
 * each new order with the Idempotency-Key it was made under (replays are
 * not new orders).
 */
export type TestUpstream = ReturnType<typeof startTestUpstream>;

export function startTestUpstream() {
  const calls: { path: string; body: unknown; headers: Headers }[] = [];
  const ordersCreated: { key: string | null; orderId: string }[] = [];
  const controls = { delayMs: 0, failWith: 0 };
  const upstream = createUpstreamFetch();
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(request) {
      const body = request.method === "POST" ? await request.clone().json() : undefined;
      calls.push({ path: new URL(request.url).pathname, body, headers: request.headers });
      if (controls.delayMs > 0) await Bun.sleep(controls.delayMs);
      if (controls.failWith > 0)
        return Response.json({ error: "injected failure" }, { status: controls.failWith });
      const response = await upstream(request);
      if (response.status === 201 && !response.headers.has("idempotent-replayed")) {
        const { id } = (await response.clone().json()) as { id: string };
        ordersCreated.push({ key: request.headers.get("idempotency-key"), orderId: id });
      }
      return response;
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    calls,
    ordersCreated,
    controls,
    stop: () => server.stop(true),
  };
}
