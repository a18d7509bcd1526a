import { expect, test } from "bun:test";
import type * as grpc from "@grpc/grpc-js";
import { Redis } from "ioredis";
import { parseStoredPosition } from "../core/position/position-forms";
import { keys } from "../core/redis/keys";
import { pingTrack, useIngestOnRedis } from "../test/support/ingest";
import { bearerMetadata, createStockIngestClient } from "../test/support/stock-grpc-client";
import { testToken, uniqueId } from "../test/support/tokens";

const fixture = useIngestOnRedis();

interface StockResponse {
  ack?: {
    lastAcceptedSeq: string;
    nextIntervalMs: number;
    dropped: { seq: string; reason: string }[];
  };
  event?: string;
}

test("a stock @grpc/grpc-js client streams pings and gets acks; its pings land in Redis", async () => {
  const client = createStockIngestClient(`127.0.0.1:${fixture.ingest.app.grpcPort}`);
  const riderId = uniqueId("rider");
  const call = (
    client.StreamPings as (m: grpc.Metadata) => grpc.ClientDuplexStream<unknown, StockResponse>
  )(bearerMetadata(await testToken(riderId, "rider", "london")));
  const responses: StockResponse[] = [];
  const finished = new Promise<void>((resolve, reject) => {
    call.on("data", (response: StockResponse) => responses.push(response));
    call.on("error", reject);
    call.on("end", () => resolve());
  });
  const track = pingTrack(4);
  const stale = { ...track[3], seq: "2" };
  for (const ping of [...track, stale]) {
    call.write({
      ping: { ...ping, seq: String(ping?.seq), recordedAtMs: String(ping?.recordedAtMs) },
    });
  }
  call.end();
  await finished;
  client.close();

  expect(responses.map((r) => r.event)).toEqual(["ack", "ack", "ack", "ack", "ack"]);
  expect(responses.slice(0, 4).map((r) => r.ack?.lastAcceptedSeq)).toEqual(["1", "2", "3", "4"]);
  expect(responses[4]?.ack?.dropped).toEqual([{ seq: "2", reason: "DROP_REASON_OUT_OF_ORDER" }]);
  const db = new Redis(fixture.redis.url);
  expect(parseStoredPosition(await db.get(keys.riderPosition(riderId)))?.seq).toBe(4n);
  db.disconnect();
});

test("the stock client sees Unauthenticated for a bad token, as a gRPC status", async () => {
  const client = createStockIngestClient(`127.0.0.1:${fixture.ingest.app.grpcPort}`);
  const error = await new Promise<grpc.ServiceError>((resolve) => {
    const call = (
      client.StreamPings as (m: grpc.Metadata) => grpc.ClientDuplexStream<unknown, unknown>
    )(bearerMetadata("not-a-token"));
    call.on("error", resolve);
    call.on("data", () => undefined);
    call.end();
  });
  client.close();
  expect(error.code).toBe(16);
});
