// The channel subscriber's announcement after its whole subscriber connection
// came back (a Redis restart, the cluster client's reconnect): the command
// connection reconnects on its own schedule, and the user reads through it at
// the announcement (tracking re-reads its orders, the ingest catches up). So
// the announcement waits for the command connection to be ready (in cluster
// mode, to send the channels' slots where the subscriber does), up to a bound.
// Here the command connection is really down (disconnected) until the test
// connects it again; Redis and the cluster are real.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Cluster, Redis } from "ioredis";
import pino from "pino";
import { readingAnnouncements } from "../../test/support/channel-announcements";
import {
  type RedisCluster,
  type RedisServer,
  startRedis,
  startRedisCluster,
} from "../../test/support/redis-server";
import { uniqueId } from "../../test/support/tokens";
import { waitUntil } from "../../test/support/wait";
import type { RedisConfig } from "../config/shared-config";
import { createChannelSubscriber } from "./channel-subscriber";
import { connectRedis } from "./client";

/**
 * A subscriber on a connection of its own, once its subscriber connection is
 * ready, with one channel subscribed; each announcement is kept, and at each
 * the channel is read through the command connection, as its users do.
 */
async function announcingSubscriber(config: RedisConfig) {
  const connection = await connectRedis(
    config,
    "channel-subscriber-reconnect-test",
    pino({ level: "silent" }),
  );
  let subscriber: Redis | Cluster | undefined;
  const { announced, reads, onResubscribed } = readingAnnouncements(connection);
  const channels = createChannelSubscriber(
    {
      ...connection,
      createSubscriber: () => {
        subscriber = connection.createSubscriber();
        return subscriber;
      },
    },
    pino({ level: "silent" }),
    () => {},
    onResubscribed,
  );
  if (!subscriber) throw new Error("no subscriber connection");
  if (subscriber.status !== "ready") await once(subscriber, "ready");
  const channel = `rider:{${uniqueId("c")}}:inbox`;
  channels.add(channel);
  await channels.subscribed(channel);
  return { connection, subscriber, channels, channel, announced, reads };
}

function once(emitter: Redis | Cluster, event: string): Promise<void> {
  return new Promise((resolve) => emitter.once(event, () => resolve()));
}

/**
 * The command connection down, the subscriber connection dropped by `drop`
 * and back: its channel is subscribed again but not announced until the
 * command connection is back; then the read made at the announcement is
 * answered.
 */
async function expectAnnouncementWaitsForCommands(
  config: RedisConfig,
  drop: (subscriber: Redis | Cluster) => Promise<void>,
) {
  const { connection, subscriber, channels, channel, announced, reads } =
    await announcingSubscriber(config);
  try {
    const ended = once(connection.client, "end");
    connection.client.disconnect();
    await ended;
    const back = once(subscriber, "ready");
    await drop(subscriber);
    await back;
    await channels.subscribed(channel);
    // Before: the announcement came in the turn after the re-subscribe, and its read failed
    // at once ("Connection is closed.", no offline queue). A turn of the event loop for it.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(announced).toEqual([]);
    await connection.client.connect();
    await waitUntil(() => announced.length > 0, 10_000, "the announcement");
    expect(announced).toEqual([[channel]]);
    expect(await Promise.all(reads)).toEqual(["read 0"]);
  } finally {
    channels.remove(channel);
    await connection.close();
  }
}

describe("standalone", () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  test("after a Redis restart the announcement waits for the command connection to be ready; the read made at it is answered", async () => {
    await expectAnnouncementWaitsForCommands({ mode: "standalone", url: redis.url }, async () => {
      // The restart as the subscriber connection sees it: closed by the server, reconnected.
      await redis.kill();
      await redis.restart();
    });
  });
});

describe("cluster", () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await startRedisCluster();
  }, 30_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  test("after the subscriber cluster client's reconnect the announcement waits for the command connection to be ready; the read made at it is answered", async () => {
    await expectAnnouncementWaitsForCommands(
      { mode: "cluster", nodes: cluster.nodes },
      async (subscriber) => {
        // The client's own outage: every connection of the subscriber cluster dropped, reconnecting.
        const closed = once(subscriber, "close");
        subscriber.disconnect(true);
        await closed;
      },
    );
  });
});
