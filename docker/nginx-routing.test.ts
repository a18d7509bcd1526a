// The shipped balancer (docker/nginx.conf on Debian's nginx, addresses
// changed only, over TLS) and the tracking ring agree: on the first
// connect, after a drain, after a node comes back and after a kill -9;
// nobody is bounced back and forth meanwhile; no token reaches nginx's
// logs; riders reach the ingest over gRPC/TLS and Connect over HTTP/1.1.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import net, { type LookupFunction } from "node:net";
import tls from "node:tls";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { keys } from "../core/redis/keys";
import { LocationIngestService } from "../proto/gen/delivery/tracking/v1/ingest_pb";
import { seedOrder } from "../test/support/orders";
import { SHIPPED_NODE_IDS, useShippedEdge } from "../test/support/shipped-edge";
import { openStockRider } from "../test/support/stock-rider";
import { testToken } from "../test/support/tokens";
import {
  startTrackingCustomer,
  type TokenCarrier,
  type TrackingCustomer,
} from "../test/support/tracking-customer";
import { waitUntil } from "../test/support/wait";

const ORDERS = 300;
/** `localhost` (the certificate's name) as 127.0.0.1, whatever the resolver says. */
const loopback: LookupFunction = (_host, options, callback) => {
  if (options.all) callback(null, [{ address: "127.0.0.1", family: 4 }]);
  else callback(null, "127.0.0.1", 4);
};
const CARRIERS: TokenCarrier[] = ["subprotocol", "header", "query"];
const edge = useShippedEdge();
const orders: { orderId: string; token: string; carrier: TokenCarrier }[] = [];
/** The long-lived watchers: one per order, opened on the public route at steady state. */
let watchers: TrackingCustomer[] = [];

beforeAll(async () => {
  const run = Date.now().toString(36);
  for (let i = 0; i < ORDERS; i++) {
    const orderId = `o-${run}-${i}`;
    const customerId = `c-${run}-${i}`;
    await seedOrder(edge.db, { orderId, customerId, riderId: `r-${run}-${i}` });
    orders.push({
      orderId,
      token: await testToken(customerId, "customer"),
      carrier: CARRIERS[i % CARRIERS.length] as TokenCarrier,
    });
  }
}, 30_000);

afterAll(() => {
  for (const watcher of watchers) watcher.close();
});

function customer(order: (typeof orders)[number], firstUrl?: string): TrackingCustomer {
  return startTrackingCustomer({
    edgeUrl: edge.nginx.wsUrl,
    ca: edge.certificate.pem,
    ...order,
    ...(firstUrl ? { firstUrl } : {}),
  });
}

async function firstOutcomes(customers: TrackingCustomer[]) {
  await waitUntil(
    () => customers.every((c) => c.attempts[0]?.outcome !== undefined),
    20_000,
    "every first connect decided",
  );
  return customers.map((c) => c.attempts[0]?.outcome);
}

/** Fresh customers on the public route, one per order: the share that reached the owner at once. */
async function directOwnerShare(): Promise<number> {
  const fresh = orders.map((order) => customer(order));
  try {
    const outcomes = await firstOutcomes(fresh);
    return outcomes.filter((outcome) => outcome === "owner").length / ORDERS;
  } finally {
    for (const c of fresh) c.close();
  }
}

/** What each long-lived watcher did from attempt `since[i]` on. */
function attemptsSince(since: number[]) {
  return watchers.map((watcher, i) => watcher.attempts.slice(since[i]));
}

async function allWatching(what: string, timeoutMs = 10_000) {
  await waitUntil(() => watchers.every((w) => w.watching), timeoutMs, what);
}

/** Open sockets per node, from each node's /metrics. */
async function socketsPerNode(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const [id, node] of edge.tracking) {
    const line = await node.metric("edge_tracking_sockets");
    counts[id] = Number(
      /^edge_tracking_sockets(?:\{[^}]*\})? (\d+)$/m.exec(line)?.[1] ?? Number.NaN,
    );
  }
  return counts;
}

describe("routing through the shipped balancer", () => {
  test("steady state: the public route reaches the owner on the first connect (≥ 99%), the URL the gateway names always", async () => {
    watchers = orders.map((order) => customer(order));
    const outcomes = await firstOutcomes(watchers);
    const direct = outcomes.filter((outcome) => outcome === "owner").length;
    console.log(`public route, first connect on the owner: ${direct}/${ORDERS}`);
    expect(direct / ORDERS).toBeGreaterThanOrEqual(0.99);

    // The nodes agree with the gateway's ring about where every socket is.
    const ring = edge.gateways[0]?.app.ring;
    const expected: Record<string, number> = { t1: 0, t2: 0, t3: 0 };
    for (const { orderId } of orders) {
      const owner = ring?.ownerOf(orderId)?.id as string;
      expected[owner] = (expected[owner] ?? 0) + 1;
    }
    let seen = {};
    await waitUntil(
      async () => {
        seen = await socketsPerNode();
        return JSON.stringify(seen) === JSON.stringify(expected);
      },
      5_000,
      `sockets per node ${JSON.stringify(expected)}`,
    ).catch((error: Error) => {
      throw new Error(`${error.message}; the nodes hold ${JSON.stringify(seen)}`);
    });

    const named = [];
    for (const order of orders) {
      const response = await fetch(
        `${edge.nginx.url}/v1/orders/${encodeURIComponent(order.orderId)}/track`,
        { headers: { authorization: `Bearer ${order.token}` }, tls: { ca: edge.certificate.pem } },
      );
      expect(response.status).toBe(200);
      const { url, node } = (await response.json()) as { url: string; node: string };
      // A URL on the public edge, never a node's own address.
      expect(url).toBe(
        `${edge.nginx.wsUrl}/tracking/${node}/v1/orders/${encodeURIComponent(order.orderId)}/track`,
      );
      named.push(customer(order, url));
    }
    const namedOutcomes = await firstOutcomes(named);
    for (const c of named) c.close();
    const namedOwner = namedOutcomes.filter((outcome) => outcome === "owner").length;
    console.log(`gateway-named URL, first connect on the owner: ${namedOwner}/${ORDERS}`);
    expect(namedOwner).toBe(ORDERS);
  }, 60_000);

  test("a drain: each of its watchers is moved once, straight to an owner that keeps it; then the public route reaches the owner (≥ 99%)", async () => {
    const since = watchers.map((w) => w.attempts.length);
    expect(await edge.tracking.get("t2")?.stop()).toBe(0);
    await allWatching("every watcher back on an owner after the drain");
    const changes = attemptsSince(since).filter((attempts) => attempts.length > 0);
    // About a third of the orders were t2's; each was moved once and kept
    // (every watcher that did anything else is listed, not just the first).
    expect(changes.length).toBeGreaterThan(ORDERS / 6);
    const notMovedOnce = changes
      .map((attempts) => attempts.map((a) => `${a.path}:${a.outcome}`).join(" "))
      .filter((attempts) => attempts !== "named:owner");
    expect(notMovedOnce).toEqual([]);
    await edge.ringsHold(["t1", "t3"]);
    const share = await directOwnerShare();
    console.log(`after the drain, public route on the owner: ${share * ORDERS}/${ORDERS}`);
    expect(share).toBeGreaterThanOrEqual(0.99);
  }, 60_000);

  test("a node that comes back: the watchers of the orders it owns again are moved to it once; none bounced", async () => {
    const since = watchers.map((w) => w.attempts.length);
    await edge.restartTracking("t2");
    await edge.ringsHold(SHIPPED_NODE_IDS);
    await allWatching("every watcher on an owner after the node came back");
    const changes = attemptsSince(since).filter((attempts) => attempts.length > 0);
    expect(changes.length).toBeGreaterThan(ORDERS / 6);
    for (const attempts of changes)
      expect(attempts.map((a) => `${a.path}:${a.outcome}`)).toEqual(["named:owner"]);
    const share = await directOwnerShare();
    console.log(`after the node came back, public route on the owner: ${share * ORDERS}/${ORDERS}`);
    expect(share).toBeGreaterThanOrEqual(0.99);
  }, 60_000);

  test("a kill -9: its watchers retry until the ring drops the node, then land on the new owner; nobody gets `moved`", async () => {
    const since = watchers.map((w) => w.attempts.length);
    const victim = "t3";
    const victimOrder = orders.find(
      (order) => edge.gateways[0]?.app.ring.ownerOf(order.orderId)?.id === victim,
    );
    await edge.tracking.get(victim)?.kill();
    // While the ring still names the dead node: the query-token route fails
    // through nginx's error paths (its error log must not get the token).
    if (victimOrder) {
      const probes = [
        `/v1/orders/${victimOrder.orderId}/track`,
        `/tracking/${victim}/v1/orders/${victimOrder.orderId}/track`,
      ].map(async (path) => {
        const response = await fetch(`${edge.nginx.url}${path}?access_token=${victimOrder.token}`, {
          headers: {
            connection: "Upgrade",
            upgrade: "websocket",
            "sec-websocket-version": "13",
            "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
          },
          tls: { ca: edge.certificate.pem },
        });
        return response.status;
      });
      expect(await Promise.all(probes)).toContain(503);
    }
    await allWatching("every watcher on an owner after the kill", 15_000);
    const changes = attemptsSince(since).filter((attempts) => attempts.length > 0);
    expect(changes.length).toBeGreaterThan(ORDERS / 6);
    let refused = 0;
    for (const attempts of changes) {
      const outcomes = attempts.map((a) => a.outcome);
      expect(outcomes).not.toContain("moved");
      expect(outcomes.at(-1)).toBe("owner");
      refused += outcomes.filter((outcome) => outcome === "refused").length;
    }
    console.log(
      `kill -9: ${changes.length} watchers reconnected, ${refused} refused attempts before the ring dropped the node`,
    );
    await edge.ringsHold(["t1", "t2"]);
    const share = await directOwnerShare();
    console.log(`after the kill, public route on the owner: ${share * ORDERS}/${ORDERS}`);
    expect(share).toBeGreaterThanOrEqual(0.99);
  }, 60_000);
});

describe("what the balancer tells and keeps", () => {
  test("no token in nginx's access or error log, though tokens came as headers, subprotocols and ?access_token=", async () => {
    const access = await edge.nginx.accessLog();
    const errors = await edge.nginx.errorLog();
    // The logs are the ones nginx wrote to: every track request is there.
    expect(access.split("\n").filter((line) => line.includes("/track")).length).toBeGreaterThan(
      ORDERS * 3,
    );
    for (const log of [access, errors]) {
      expect(log).not.toContain("access_token");
      // Every JWT starts with the base64 of `{"`.
      expect(log).not.toContain("eyJ");
      for (const { token } of orders.slice(0, 30)) expect(log).not.toContain(token);
    }
  });

  test("the gateway behind it keys failed logins on the address nginx appended, not the one the client wrote", async () => {
    const response = await fetch(`${edge.nginx.url}/v1/orders/x/status`, {
      headers: { authorization: "Bearer forged", "x-forwarded-for": "203.0.113.9" },
      tls: { ca: edge.certificate.pem },
    });
    expect(response.status).toBe(401);
    const counted = await edge.db.keys(keys.rateLimit("authfail:127.0.0.1", 0).replace(/0$/, "*"));
    expect(counted.length).toBeGreaterThan(0);
    expect(await edge.db.keys("*203.0.113.9*")).toEqual([]);
  });

  test("the ingest behind it keys failed authentications on the address nginx appended, on the gRPC and the HTTP/1.1 route", async () => {
    // Clients on their own loopback addresses: nginx's own (the ingest's TCP peer) is 127.0.0.1.
    const port = edge.nginx.port;
    const tlsTo = (localAddress: string) =>
      tls.connect({
        socket: net.connect({ host: "127.0.0.1", port, localAddress }),
        ca: edge.certificate.pem,
        servername: "localhost",
        ALPNProtocols: ["h2"],
      });
    const grpcClient = createClient(
      LocationIngestService,
      createGrpcTransport({
        baseUrl: `https://localhost:${port}`,
        nodeOptions: { createConnection: () => tlsTo("127.0.0.61") },
      }),
    );
    const http1Client = createClient(
      LocationIngestService,
      createConnectTransport({
        baseUrl: `https://localhost:${port}`,
        httpVersion: "1.1",
        nodeOptions: { localAddress: "127.0.0.62", ca: edge.certificate.pem, lookup: loopback },
      }),
    );
    const forged = {
      headers: { authorization: "Bearer forged", "x-forwarded-for": "203.0.113.19" },
    };
    for (const client of [grpcClient, http1Client]) {
      const refused = await client.sendPing({}, forged).catch((error: unknown) => error);
      expect(ConnectError.from(refused).code).toBe(Code.Unauthenticated);
    }
    for (const address of ["127.0.0.61", "127.0.0.62"]) {
      const counted = await edge.db.keys(
        keys.rateLimit(`authfail:${address}`, 0).replace(/0$/, "*"),
      );
      expect(counted.length).toBeGreaterThan(0);
    }
    expect(await edge.db.keys("*203.0.113.19*")).toEqual([]);
  });

  test("refusals are the edge's JSON errors; the ring lookup, metrics and readiness are not public; plain HTTP redirects", async () => {
    const tls = { ca: edge.certificate.pem };
    const unknown = await fetch(`${edge.nginx.url}/tracking/t9/v1/orders/o1/track`, { tls });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe("not_found");
    for (const path of ["/ring/owner/o1", "/_tracking_owner", "/_track_by_ring"]) {
      const response = await fetch(`${edge.nginx.url}${path}`, { tls });
      expect(response.status).toBe(404);
      expect(response.headers.get("x-tracking-node")).toBeNull();
    }
    // The tiers' metrics and readiness stay inside, however the path is spelled.
    for (const path of ["/metrics", "/readyz", "//metrics", "/%6Detrics", "/metrics?x=1"]) {
      const response = await fetch(`${edge.nginx.url}${path}`, { tls });
      const text = await response.text();
      expect({ path, status: response.status }).toEqual({ path, status: 404 });
      expect(text).not.toContain("edge_");
      expect((JSON.parse(text) as { error: { code: string } }).error.code).toBe("not_found");
    }
    // Under nginx's buffer, a long query string reaches the gateway, which refuses it itself.
    const long = await fetch(`${edge.nginx.url}/v1/restaurants?q=${"x".repeat(20_000)}`, { tls });
    expect(long.status).toBe(431);
    expect(((await long.json()) as { error: { code: string } }).error.code).toBe(
      "headers_too_large",
    );
    const plain = await fetch(`http://127.0.0.1:${new URL(edge.nginx.url).port}/`, {
      redirect: "manual",
    }).catch(() => undefined);
    // The TLS port does not speak plain HTTP (nginx answers 400); the HTTP port redirects.
    expect(plain?.status).toBe(400);
  });
});

describe("riders through the balancer", () => {
  test("a stock grpc-js rider streams pings over gRPC with TLS (h2 by ALPN) and gets each ack", async () => {
    const token = await testToken(`rider-tls-${Date.now()}`, "rider", "london");
    const rider = openStockRider(
      `127.0.0.1:${edge.nginx.port}`,
      token,
      grpc.credentials.createSsl(Buffer.from(edge.certificate.pem)),
      // The certificate's DNS name (Bun refuses an IP address as the TLS server name).
      { "grpc.ssl_target_name_override": "localhost" },
    );
    try {
      for (let i = 0; i < 3; i++) expect(await rider.ping(10_000)).toBeGreaterThan(0);
    } finally {
      rider.close();
    }
  });

  test("Connect unary JSON over HTTP/1.1 with TLS reaches the ingest's HTTP port", async () => {
    const token = await testToken(`rider-h1-${Date.now()}`, "rider", "london");
    const now = Date.now();
    const response = await fetch(
      `${edge.nginx.url}/delivery.tracking.v1.LocationIngestService/SendPing`,
      {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({
          ping: { lat: 51.5, lng: -0.12, accuracyM: 5, recordedAtMs: String(now), seq: "1" },
        }),
        tls: { ca: edge.certificate.pem },
      },
    );
    expect(response.status).toBe(200);
    const { ack } = (await response.json()) as { ack?: { lastAcceptedSeq?: string } };
    expect(ack?.lastAcceptedSeq).toBe("1");
    await waitUntil(async () =>
      (await edge.nginx.accessLog()).includes(
        '"path":"/delivery.tracking.v1.LocationIngestService/SendPing","protocol":"HTTP/1.1","status":200',
      ),
    );
  });
});
