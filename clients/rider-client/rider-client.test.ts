import { beforeAll, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { encodeRiderInboxMessage } from "../../core/messages/rider-inbox";
import { parseStoredPosition } from "../../core/position/position-forms";
import { keys } from "../../core/redis/keys";
import { DropReason, LocationIngestService } from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { freePort } from "../../test/support/free-port";
import { type IngestProcess, spawnIngest } from "../../test/support/ingest-process";
import { inboxListeners } from "../../test/support/live-streams";
import { testOffer } from "../../test/support/orders";
import { useRedisClient } from "../../test/support/redis-connection";
import { testToken, uniqueId } from "../../test/support/tokens";
import { waitUntil } from "../../test/support/wait";
import { offerCountdown } from "./offer-countdown";
import { RiderClient as Rider, type RiderClient } from "./rider-client";
import type { RiderClientEvents } from "./rider-client-api";
import { FileSeqStore } from "./seq-file-store";

// A real ingest process on a fixed port, stopped and started again as a
// deploy or a crash would, with the quickest intervals its config allows.
let port: number;
let ingest: IngestProcess | undefined;
let folder: string;
const ENV = {
  PING_INTERVAL_PARKED_MS: "1000",
  PING_INTERVAL_MOVING_MS: "500",
  PING_INTERVAL_NEAR_STOP_MS: "500",
  DRAIN_RECONNECT_MS: "300",
};

const fixture = useRedisClient({
  stopFirst: async () => {
    await ingest?.stop();
    await rm(folder, { recursive: true, force: true });
  },
});

beforeAll(async () => {
  port = await freePort();
  folder = await mkdtemp(join(tmpdir(), "rider-client-"));
  ingest = await startIngest();
});

function startIngest(): Promise<IngestProcess> {
  return spawnIngest({ REDIS_URL: fixture.redis.url, INGEST_PORT: String(port), ...ENV });
}

/** A rider heading north at 5 m/s from where the test starts it; its fixes reach the app `lagMs` late. */
async function rider(riderId: string, seqFile: string, lagMs = 0) {
  const startedAt = Date.now();
  const seen = {
    acks: [] as RiderClientEvents["ack"][],
    uploads: [] as RiderClientEvents["uploaded"][],
    reconnects: [] as RiderClientEvents["reconnect"][],
    retries: 0,
    stopped: [] as RiderClientEvents["stopped"][],
  };
  const client: RiderClient = new Rider({
    ingest: createClient(
      LocationIngestService,
      createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }),
    ),
    token: await testToken(riderId, "rider", "london"),
    seqStore: new FileSeqStore(seqFile),
    locate: () => ({
      lat: 51.5 + ((Date.now() - startedAt) / 1000) * (5 / 111_320),
      lng: -0.12,
      accuracyM: 5,
      speedMps: 5,
      headingDeg: 0,
      recordedAtMs: Date.now() - lagMs,
    }),
    firstIntervalMs: 300,
    backoff: { firstMs: 100, maxMs: 400 },
  });
  client.on("ack", (ack) => seen.acks.push(ack));
  client.on("uploaded", (uploaded) => seen.uploads.push(uploaded));
  client.on("reconnect", (reconnect) => seen.reconnects.push(reconnect));
  client.on("retrying", () => {
    seen.retries += 1;
  });
  client.on("stopped", (stopped) => seen.stopped.push(stopped));
  const run = client.start();
  return { client, seen, run };
}

/**
 * Every fix of the upload taken; the one exception is a fix the lost
 * ingest stored without its ack reaching the app, which the app sends again
 * and the ingest refuses as a repeat (OUT_OF_ORDER).
 */
function expectUploaded(upload: RiderClientEvents["uploaded"] | undefined): void {
  const { acceptedCount = 0, dropped = [] } = upload?.response ?? {};
  expect(upload?.sent).toBeGreaterThanOrEqual(3);
  expect(acceptedCount + dropped.length).toBe(upload?.sent ?? -1);
  expect(dropped.length).toBeLessThanOrEqual(1);
  for (const drop of dropped) expect(drop.reason).toBe(DropReason.OUT_OF_ORDER);
}

/** The stored position's seq: at least the last acked, at most the last sent (close() may cut one off). */
async function expectStoredSeq(riderId: string, client: RiderClient, acked: bigint): Promise<void> {
  const stored = parseStoredPosition(await fixture.db.get(keys.riderPosition(riderId)))?.seq ?? 0n;
  expect(stored).toBeGreaterThanOrEqual(acked);
  expect(stored).toBeLessThanOrEqual(client.seq);
}

test("a drain (SIGTERM): Reconnect honoured, the fixes of the gap kept and uploaded to the next ingest, seq saved", async () => {
  const riderId = uniqueId("rider");
  const seqFile = join(folder, `${riderId}.seq`);
  const { client, seen } = await rider(riderId, seqFile);
  await waitUntil(() => seen.acks.length >= 2, 10_000, "acks");
  await ingest?.stop();
  ingest = undefined;
  expect(seen.reconnects).toEqual([{ afterMs: 300, reason: expect.any(String) }]);
  // No ingest at all now: the fixes go to the backlog.
  await waitUntil(() => client.backlogSize >= 3, 10_000, "a backlog");
  ingest = await startIngest();
  await waitUntil(() => seen.uploads.length === 1, 10_000, "the upload");
  const [upload] = seen.uploads;
  expectUploaded(upload);
  // Live again on the new process, past the uploaded fixes.
  const acked = seen.acks.length;
  await waitUntil(() => seen.acks.length >= acked + 2, 10_000, "acks after the upload");
  const last = seen.acks.at(-1)?.lastAcceptedSeq ?? 0n;
  expect(last).toBeGreaterThan(upload?.response.lastAcceptedSeq ?? last);
  expect(seen.acks.flatMap((ack) => ack.dropped)).toEqual([]);
  await client.close();
  await expectStoredSeq(riderId, client, last);
  expect(await new FileSeqStore(seqFile).load()).toBe(client.seq);
  expect(seen.stopped).toEqual([{ reason: "closed" }]);
});

test("an outage (SIGKILL): retried with backoff, the backlog uploaded once back; a restarted app counts on from its saved seq", async () => {
  const riderId = uniqueId("rider");
  const seqFile = join(folder, `${riderId}.seq`);
  const first = await rider(riderId, seqFile);
  await waitUntil(() => first.seen.acks.length >= 2, 10_000, "acks");
  await ingest?.kill();
  ingest = undefined;
  await waitUntil(() => first.seen.retries >= 2 && first.client.backlogSize >= 3, 10_000);
  expect(first.seen.reconnects).toEqual([]);
  ingest = await startIngest();
  await waitUntil(() => first.seen.uploads.length === 1, 10_000, "the upload");
  const [upload] = first.seen.uploads;
  expectUploaded(upload);
  await first.client.close();
  await expectStoredSeq(riderId, first.client, upload?.response.lastAcceptedSeq ?? 0n);

  // The app again, with fixes 2 s old: their time is below the seqs already sent, so only
  // the saved seq keeps them above the stored one.
  const again = await rider(riderId, seqFile, 2_000);
  await waitUntil(() => again.seen.acks.length >= 2, 10_000, "acks after the restart");
  expect(again.seen.acks.flatMap((ack) => ack.dropped)).toEqual([]);
  const stored = async () =>
    parseStoredPosition(await fixture.db.get(keys.riderPosition(riderId)))?.seq;
  await waitUntil(
    async () => ((await stored()) ?? 0n) > first.client.seq,
    5_000,
    "a newer stored seq",
  );
  await again.client.close();
});

test("an offer on the live stream comes with the time it had left as sent, and its countdown starts there", async () => {
  const riderId = uniqueId("rider");
  const { client, seen } = await rider(riderId, join(folder, `${riderId}.seq`));
  const offers: { expiresInMs: number; timeLeftMs: () => number }[] = [];
  client.on("offer", (offer) =>
    offers.push({ expiresInMs: offer.expiresInMs, timeLeftMs: offerCountdown(offer) }),
  );
  try {
    await waitUntil(() => seen.acks.length >= 1, 10_000, "an ack");
    await waitUntil(async () => (await inboxListeners(fixture.db, riderId)) >= 1, 5_000, "inbox");
    // 30 s to answer from when the gateway counted.
    await fixture.db.publish(keys.riderInbox(riderId), encodeRiderInboxMessage(testOffer("o1")));
    await waitUntil(() => offers.length === 1, 5_000, "the offer");
    const expiresInMs = offers[0]?.expiresInMs ?? 0;
    expect(expiresInMs).toBeGreaterThan(0);
    expect(expiresInMs).toBeLessThanOrEqual(30_000);
    const left = offers[0]?.timeLeftMs() ?? 0;
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(expiresInMs);
  } finally {
    await client.close();
  }
});
