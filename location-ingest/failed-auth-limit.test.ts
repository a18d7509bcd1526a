// Failed token checks per client address on the ingest (a process of its own,
// real Redis): the gateway's and the tracking nodes' limit, in their one Redis
// count, answered ResourceExhausted before the signature check. Each client
// binds its own loopback address (127.0.0.0/8), so one test host speaks as
// many clients, and the HTTP/1.1 front's own hop (127.0.0.1) is told apart.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import net from "node:net";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { keys } from "../core/redis/keys";
import { LocationIngestService } from "../proto/gen/delivery/tracking/v1/ingest_pb";
import { startTestGateway, type TestGateway } from "../test/support/gateway";
import { bearer, pingTrack } from "../test/support/ingest";
import { type IngestProcess, spawnIngest } from "../test/support/ingest-process";
import { useRedisClient } from "../test/support/redis-connection";
import { testToken, uniqueId } from "../test/support/tokens";

const LIMIT = 5;
let ingest: IngestProcess;
/** The same ingest's settings, behind a balancer that appends X-Forwarded-For. */
let balanced: IngestProcess;
let gateway: TestGateway;

const fixture = useRedisClient({
  stopFirst: () => Promise.all([ingest?.stop(), balanced?.stop(), gateway?.stop()]),
});

const limitEnv = () => ({
  REDIS_URL: fixture.redis.url,
  AUTH_FAILURE_LIMIT: String(LIMIT),
  AUTH_FAILURE_WINDOW_MS: "3600000",
});

beforeAll(async () => {
  [ingest, balanced, gateway] = await Promise.all([
    spawnIngest(limitEnv()),
    spawnIngest({ ...limitEnv(), INGEST_CLIENT_ADDRESS_HEADER: "X-Forwarded-For" }),
    startTestGateway({
      ...limitEnv(),
      ORDER_SERVICE_URL: "http://127.0.0.1:9",
      SEARCH_SERVICE_URL: "http://127.0.0.1:9",
      GATEWAY_CLIENT_ADDRESS_HEADER: "X-Forwarded-For",
    }),
  ]);
});

type IngestClient = Client<typeof LocationIngestService>;
/** The h2c clients' sockets, closed after the tests. */
const sockets: net.Socket[] = [];
afterAll(() => {
  for (const socket of sockets) socket.destroy();
});

/** gRPC over h2c from `address`, on `node`'s INGEST_PORT. */
function grpcFrom(address: string, node = ingest): IngestClient {
  const transport = createGrpcTransport({
    baseUrl: `http://127.0.0.1:${node.grpcPort}`,
    nodeOptions: {
      createConnection: () => {
        const socket = net.connect({
          host: "127.0.0.1",
          port: node.grpcPort,
          localAddress: address,
        });
        sockets.push(socket);
        return socket;
      },
    },
  });
  return createClient(LocationIngestService, transport);
}

/** Connect JSON over HTTP/1.1 from `address`, on `node`'s INGEST_HTTP_PORT (through its front). */
function http1From(address: string, node = ingest): IngestClient {
  const transport = createConnectTransport({
    baseUrl: `http://127.0.0.1:${node.httpPort}`,
    httpVersion: "1.1",
    useBinaryFormat: false,
    nodeOptions: { localAddress: address },
  });
  return createClient(LocationIngestService, transport);
}

/** A rider token no key signed: well formed, so only its signature check refuses it. */
const forged = () =>
  `eyJhbGciOiJIUzI1NiJ9.${Buffer.from(JSON.stringify({ sub: uniqueId("rider"), role: "rider", city: "london" })).toString("base64url")}.${uniqueId("sig")}`;

/** One SendPing: "ok", or the ConnectError it failed with. */
async function sendPing(
  client: IngestClient,
  token: string,
  headers: Record<string, string> = {},
): Promise<"ok" | ConnectError> {
  const [ping] = pingTrack(1);
  const options = bearer(token);
  Object.assign(options.headers, headers);
  try {
    await client.sendPing({ ping }, options);
    return "ok";
  } catch (error) {
    return ConnectError.from(error);
  }
}

const codeOf = (answer: "ok" | ConnectError) => (answer === "ok" ? "ok" : Code[answer.code]);

function expectBlocked(answer: "ok" | ConnectError): void {
  expect(codeOf(answer)).toBe("ResourceExhausted");
  const error = answer as ConnectError;
  expect(error.rawMessage).toBe("too many failed authentications from this address");
  const retryAfter = Number(error.metadata.get("retry-after"));
  expect(retryAfter > 0 && retryAfter <= 3_600).toBe(true);
}

/** Spends `address`'s budget with forged tokens; each within it is Unauthenticated. */
async function spendBudget(client: IngestClient): Promise<void> {
  for (let i = 0; i < LIMIT; i++)
    expect(codeOf(await sendPing(client, forged()))).toBe("Unauthenticated");
}

/** The failed-auth counts in Redis for `address`: the gateway's and tracking's key. */
const countsOf = (address: string) =>
  fixture.db.keys(keys.rateLimit(`authfail:${address}`, 0).replace(/0$/, "*"));

describe("forged tokens from one address on the h2c port", () => {
  test("past the budget every call from it is ResourceExhausted before the signature check (SendPing, StreamPings, no token); another address is not", async () => {
    const attacker = grpcFrom("127.0.0.11");
    await spendBudget(attacker);
    const refusedBefore = await ingest.metric("edge_ingest_limit_hits_total", {
      limit: "failed_auth",
    });
    expectBlocked(await sendPing(attacker, forged()));
    expectBlocked(await sendPing(attacker, ""));
    const stream = attacker.streamPings(
      (async function* () {
        yield { ping: pingTrack(1)[0] };
      })(),
      bearer(forged()),
    );
    let streamError: unknown;
    try {
      for await (const _ of stream);
    } catch (error) {
      streamError = error;
    }
    expectBlocked(ConnectError.from(streamError));
    expect(
      await ingest.metric("edge_ingest_limit_hits_total", { limit: "failed_auth" }),
    ).toBeGreaterThanOrEqual(refusedBefore + 3);
    // Counted in the gateway's own key for the address.
    expect((await countsOf("127.0.0.11")).length).toBe(1);

    expect(codeOf(await sendPing(grpcFrom("127.0.0.12"), forged()))).toBe("Unauthenticated");
  });

  test("a rider token verified here before the block still passes; one not verified yet is refused like a forged one (the gateway's rule)", async () => {
    const riderId = uniqueId("rider");
    const known = await testToken(riderId, "rider", "london");
    // Another lifetime: minted in the same second with the same claims it would be the same token.
    const fresh = await testToken(riderId, "rider", "london", 7_200);
    const rider = grpcFrom("127.0.0.21");
    expect(await sendPing(rider, known)).toBe("ok");
    await spendBudget(rider);
    expectBlocked(await sendPing(rider, forged()));

    expect(await sendPing(rider, known)).toBe("ok");
    expectBlocked(await sendPing(rider, fresh));
    expect(await sendPing(grpcFrom("127.0.0.22"), fresh)).toBe("ok");
  });
});

describe("the HTTP/1.1 port", () => {
  test("counts the client's own address, not the front's loopback hop to the server, nor a header the client wrote; one count with the h2c port", async () => {
    const attacker = http1From("127.0.0.31");
    await spendBudget(attacker);
    expectBlocked(await sendPing(attacker, forged()));
    // Without INGEST_CLIENT_ADDRESS_HEADER a client's X-Forwarded-For is nobody's word.
    expectBlocked(await sendPing(attacker, forged(), { "x-forwarded-for": "203.0.113.31" }));
    expect((await countsOf("127.0.0.31")).length).toBe(1);
    expect(await countsOf("127.0.0.1")).toEqual([]);
    expect(await fixture.db.keys("*203.0.113.31*")).toEqual([]);
    // The same address on the other port: the same count.
    expectBlocked(await sendPing(grpcFrom("127.0.0.31"), forged()));
    expect(codeOf(await sendPing(http1From("127.0.0.32"), forged()))).toBe("Unauthenticated");
  });
});

describe("one count with the gateway", () => {
  test("an address the gateway's count blocked is refused here at its first forged token", async () => {
    for (let i = 0; i < LIMIT; i++) {
      const response = await fetch(`${gateway.url}/v1/orders/x/status`, {
        headers: { authorization: `Bearer ${forged()}`, "x-forwarded-for": "127.0.0.41" },
      });
      expect(response.status).toBe(401);
    }
    expectBlocked(await sendPing(grpcFrom("127.0.0.41"), forged()));
  });
});

describe("behind a balancer (INGEST_CLIENT_ADDRESS_HEADER)", () => {
  test("on both ports the header's rightmost entry is the client, the entries the client wrote to its left are ignored", async () => {
    const from = (address: string) => ({ "x-forwarded-for": `198.51.100.200, ${address}` });
    const ports = [
      { client: grpcFrom("127.0.0.51", balanced), victim: "203.0.113.51" },
      { client: http1From("127.0.0.52", balanced), victim: "203.0.113.52" },
    ];
    for (const { client, victim } of ports) {
      for (let i = 0; i < LIMIT; i++)
        expect(codeOf(await sendPing(client, forged(), from(victim)))).toBe("Unauthenticated");
      expectBlocked(await sendPing(client, forged(), from(victim)));
      expectBlocked(
        await sendPing(client, forged(), { "x-forwarded-for": `203.0.113.99, ${victim}` }),
      );
      expect((await countsOf(victim)).length).toBe(1);
      // The balancer's own address (the TCP peer) is not what is counted.
      expect(codeOf(await sendPing(client, forged(), from("203.0.113.250")))).toBe(
        "Unauthenticated",
      );
    }
  });
});
