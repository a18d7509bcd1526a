import { beforeAll, describe, expect, test } from "bun:test";
import { Code, type ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { encodeRiderInboxMessage } from "../core/messages/rider-inbox";
import { parseStoredPosition } from "../core/position/position-forms";
import { keys } from "../core/redis/keys";
import { LocationIngestService } from "../proto/gen/delivery/tracking/v1/ingest_pb";
import { pingTrack } from "../test/support/ingest";
import { type IngestProcess, spawnIngest } from "../test/support/ingest-process";
import { testOffer } from "../test/support/orders";
import { openPingStream, type PingStream } from "../test/support/ping-stream";
import { useRedisClient } from "../test/support/redis-connection";
import { testToken, uniqueId } from "../test/support/tokens";
import { waitUntil } from "../test/support/wait";

// One live StreamPings per rider across ingest nodes, with two real ingest
// processes on one Redis: what a balancer spreading an app's reconnects does.
let nodes: IngestProcess[];

const fixture = useRedisClient({
  stopFirst: async () => {
    for (const node of nodes ?? []) await node.stop();
  },
});

beforeAll(async () => {
  nodes = await Promise.all([
    spawnIngest({ REDIS_URL: fixture.redis.url }),
    spawnIngest({ REDIS_URL: fixture.redis.url }),
  ]);
});

const clientOf = (node: IngestProcess) =>
  createClient(LocationIngestService, createGrpcTransport({ baseUrl: node.grpcUrl }));

async function acked(stream: PingStream, seq: bigint): Promise<void> {
  stream.send(pingTrack(1, { startSeq: seq })[0] as never);
  const response = await stream.next();
  expect(response.event.case).toBe("ack");
  if (response.event.case === "ack") expect(response.event.value.dropped).toEqual([]);
}

describe("one live StreamPings per rider across nodes", () => {
  test("a stream opened on node B ends the rider's stream on node A with FAILED_PRECONDITION; offers then reach B", async () => {
    const [nodeA, nodeB] = nodes as [IngestProcess, IngestProcess];
    const riderId = uniqueId("rider");
    const token = await testToken(riderId, "rider", "london");
    const onA = openPingStream(clientOf(nodeA), token);
    await acked(onA, 1n);
    const onB = openPingStream(clientOf(nodeB), token);
    await acked(onB, 2n);
    const error = (await onA.ended) as ConnectError;
    expect(error?.code).toBe(Code.FailedPrecondition);
    expect(await nodeA.metric("edge_ingest_streams_superseded_total")).toBe(1);
    await fixture.db.publish(keys.riderInbox(riderId), encodeRiderInboxMessage(testOffer("o1")));
    const response = await onB.next();
    expect(response.event.case === "offer" && response.event.value.orderId).toBe("o1");
    await acked(onB, 3n);
    await onB.finish();
  });

  test("two streams opened at once on two nodes: exactly one stays, and the stored position never goes back", async () => {
    const riderId = uniqueId("rider");
    const token = await testToken(riderId, "rider", "london");
    const streams = nodes.map((node) => openPingStream(clientOf(node), token));
    // Both take a ping while the generations cross (either may already be superseded, and the
    // lower seq may find the higher one stored): what matters is what is left after.
    await Promise.allSettled([
      acked(streams[0] as PingStream, 100n),
      acked(streams[1] as PingStream, 50n),
    ]);
    const ended = streams.map(() => false);
    streams.forEach((stream, index) => {
      stream.ended.then(() => {
        ended[index] = true;
      });
    });
    await waitUntil(() => ended.filter(Boolean).length === 1, 5_000, "one of the two to end");
    const survivor = streams[ended.indexOf(false)] as PingStream;
    const loser = streams[ended.indexOf(true)] as PingStream;
    expect(((await loser.ended) as ConnectError).code).toBe(Code.FailedPrecondition);
    await acked(survivor, 200n);
    await acked(survivor, 201n);
    expect(ended.filter(Boolean)).toHaveLength(1);
    const stored = parseStoredPosition(await fixture.db.get(keys.riderPosition(riderId)));
    expect(stored?.seq).toBe(201n);
    await survivor.finish();
  });
});
