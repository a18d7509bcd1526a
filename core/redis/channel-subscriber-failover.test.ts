// The channel subscriber through a master's failover on a cluster with
// replicas: the promoted replica serves the master's channels, and the
// subscriber's user hears they may have missed messages meanwhile, whether
// the master died (its subscriber connection closed at once) or hung (the
// connection stays open; only the slot map moves). While the dead master
// is not yet replaced, ioredis replaces its subscriber every few
// milliseconds: nothing is subscribed there, and nothing warned.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import pino from "pino";
import { readingAnnouncements } from "../../test/support/channel-announcements";
import { type RedisCluster, startRedisCluster } from "../../test/support/redis-server";
import { uniqueId } from "../../test/support/tokens";
import { waitUntil } from "../../test/support/wait";
import { createChannelSubscriber } from "./channel-subscriber";
import { connectRedis, type RedisConnection } from "./client";

let cluster: RedisCluster;
let connection: RedisConnection;
beforeAll(async () => {
  cluster = await startRedisCluster(3, { replicas: 1, nodeTimeoutMs: 1_000 });
  connection = await connectRedis(
    { mode: "cluster", nodes: cluster.nodes },
    "channel-subscriber-failover-test",
    pino({ level: "silent" }),
  );
}, 30_000);
afterAll(async () => {
  await connection?.close();
  await cluster?.stop();
});

/**
 * A subscriber with its messages, announcements and log lines at warn or
 * above kept, once its connection is ready (so its first subscribes are
 * no announcement).
 */
async function recordingSubscriber() {
  const warnings: string[] = [];
  const logger = pino({ level: "warn" }, { write: (line: string) => warnings.push(line) });
  const messages: string[] = [];
  const { announced, reads, onResubscribed } = readingAnnouncements(connection);
  let ready: Promise<unknown> | undefined;
  const channels = createChannelSubscriber(
    {
      ...connection,
      createSubscriber() {
        const subscriber = connection.createSubscriber();
        ready = new Promise((resolve) => subscriber.once("ready", resolve));
        return subscriber;
      },
    },
    logger,
    (channel, payload) => messages.push(`${channel} ${payload}`),
    onResubscribed,
  );
  await ready;
  return { channels, messages, announced, reads, warnings };
}

/** A new channel name on the master at `port` and one on another master. */
async function channelsAround(port: number): Promise<{ on: string; elsewhere: string }> {
  const found: { on?: string; elsewhere?: string } = {};
  while (!found.on || !found.elsewhere) {
    const channel = `rider:{${uniqueId("c")}}:inbox`;
    found[(await cluster.masterOf(channel)) === port ? "on" : "elsewhere"] ??= channel;
  }
  return { on: found.on, elsewhere: found.elsewhere };
}

/** SPUBLISH once the client has learnt the promotion (a publish to the old master fails at once). */
async function publishOnce(channel: string, payload: string): Promise<void> {
  await waitUntil(
    async () => (await connection.client.spublish(channel, payload).catch(() => 0)) === 1,
    10_000,
    `a subscriber of ${channel}`,
  );
}

describe("a master failed over to its replica", () => {
  for (const how of ["killed", "hung"] as const)
    test(`${how}: its channels are announced once the replica serves them (and commands reach it), and only those; nothing warned`, async () => {
      const { channels, messages, announced, reads, warnings } = await recordingSubscriber();
      // A master with a live replica: not the one promoted for the master killed before.
      let port = await cluster.masterOf(uniqueId(how));
      while ((await cluster.replicasOf(port)).length === 0)
        port = await cluster.masterOf(uniqueId(how));
      const { on, elsewhere } = await channelsAround(port);
      channels.add(on);
      channels.add(elsewhere);
      await channels.subscribed(on);
      await channels.subscribed(elsewhere);
      try {
        if (how === "killed") await cluster.kill(port);
        else cluster.pause(port);
        await waitUntil(() => announced.length > 0, 15_000, "the announcement");
        expect(announced).toEqual([[on]]);
        expect(await Promise.all(reads)).toEqual(["read 0"]);
        await publishOnce(on, "after");
        await waitUntil(() => messages.length > 0, 5_000, "the message");
        expect(messages).toEqual([`${on} after`]);
        expect(warnings).toEqual([]);
      } finally {
        if (how === "hung") cluster.resume(port);
        channels.remove(on);
        channels.remove(elsewhere);
      }
    }, 30_000);
});
