// The shared subscriber connection: a channel wanted before the connection
// is ready (a rider's stream opened right after start, say) is subscribed
// once it is, without a warning: nothing failed, and the ready handler
// subscribes every wanted channel anyway.
import { expect, test } from "bun:test";
import pino from "pino";
import { useRedisConnection } from "../../test/support/redis-connection";
import { settleWithin } from "../lifecycle/settle-within";
import { createChannelSubscriber } from "./channel-subscriber";

const fixture = useRedisConnection("channel-subscriber-test");

test("a channel added before the subscriber connection is ready is subscribed once it is, without a warning", async () => {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino(
    { level: "debug" },
    { write: (line: string) => lines.push(JSON.parse(line)) },
  );
  const messages: string[] = [];
  const subscriber = createChannelSubscriber(fixture.connection, logger, (_, payload) =>
    messages.push(payload),
  );
  // At once: its connection is still opening.
  subscriber.add("test-channel");
  expect(await settleWithin(subscriber.subscribed("test-channel"), 5_000, "late")).toBeUndefined();
  await fixture.connection.client.publish("test-channel", "hello");
  const deadline = Date.now() + 5_000;
  while (messages.length === 0 && Date.now() < deadline) await Bun.sleep(10);
  expect(messages).toEqual(["hello"]);
  expect(lines.filter((line) => line.level >= 40)).toEqual([]);
  subscriber.remove("test-channel");
});

test("a channel added and removed before the subscriber connection is ready costs no command and no warning", async () => {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino(
    { level: "debug" },
    { write: (line: string) => lines.push(JSON.parse(line)) },
  );
  const messages: string[] = [];
  const subscriber = createChannelSubscriber(fixture.connection, logger, (_, payload) =>
    messages.push(payload),
  );
  subscriber.add("gone-channel");
  subscriber.remove("gone-channel");
  // A channel wanted after it: once it is subscribed, the connection was ready a while.
  subscriber.add("kept-channel");
  expect(await settleWithin(subscriber.subscribed("kept-channel"), 5_000, "late")).toBeUndefined();
  await fixture.connection.client.publish("gone-channel", "not for us");
  await fixture.connection.client.publish("kept-channel", "hello");
  const deadline = Date.now() + 5_000;
  while (messages.length === 0 && Date.now() < deadline) await Bun.sleep(10);
  expect(messages).toEqual(["hello"]);
  expect(lines.filter((line) => line.level >= 40)).toEqual([]);
});
