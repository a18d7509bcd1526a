import { describe, expect, test } from "bun:test";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import { parseStoredPosition } from "../../core/position/position-forms";
import { keys } from "../../core/redis/keys";
import type { LocationIngestService } from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { pingTrack, useIngestOnRedis } from "../../test/support/ingest";
import { openPingStream, type PingStream } from "../../test/support/ping-stream";
import { testToken, tokenExpMs, uniqueId } from "../../test/support/tokens";
import { waitUntil } from "../../test/support/wait";

const fixture = useIngestOnRedis();

async function expectAck(stream: PingStream, seq: bigint): Promise<void> {
  stream.send(pingTrack(1, { startSeq: seq })[0] as never);
  const response = await stream.next();
  expect(response.event.case).toBe("ack");
  if (response.event.case === "ack") expect(response.event.value.dropped).toEqual([]);
}

/** How the call ended, or a rejection when it is still open `graceMs` after the token's exp. */
function endedAfter(stream: PingStream, expMs: number, graceMs = 3_000): Promise<unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const open = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the call is still open ${graceMs} ms after its token's exp`)),
      expMs - Date.now() + graceMs,
    );
  });
  return Promise.race([stream.ended, open]).finally(() => clearTimeout(timer));
}

const storedSeq = async (riderId: string) =>
  parseStoredPosition(await fixture.db.get(keys.riderPosition(riderId)))?.seq;

describe("a rider's calls and their token", () => {
  test("the call ends UNAUTHENTICATED `token expired` at the token's exp, with no ping to trigger it, on gRPC and Connect; a fresh token streams again; a far exp does not end it", async () => {
    const paths: [string, Client<typeof LocationIngestService>][] = [
      ["grpc", fixture.ingest.grpc],
      ["connect", fixture.ingest.connect],
    ];
    // Past setTimeout's longest delay (24.8 days): a timer armed with it would fire at once.
    const longLived = openPingStream(
      fixture.ingest.grpc,
      await testToken(uniqueId("rider"), "rider", "london", 40 * 86_400),
    );
    await expectAck(longLived, 1n);
    await Promise.all(
      paths.map(async ([name, client]) => {
        const riderId = uniqueId(`rider-${name}`);
        // exp is whole seconds: a 3 s token lives 2-3 s, time to open the stream and be acked.
        const token = await testToken(riderId, "rider", "london", 3);
        const expMs = tokenExpMs(token);
        const stream = openPingStream(client, token);
        await expectAck(stream, 1n);
        const ended = (await endedAfter(stream, expMs)) as ConnectError;
        expect(Date.now()).toBeGreaterThanOrEqual(expMs);
        expect(ended).toBeInstanceOf(ConnectError);
        expect(ended.code).toBe(Code.Unauthenticated);
        expect(ended.rawMessage).toBe("token expired");
        // The app's next step (docs/mobile-apps.md): a fresh token, and it streams again.
        const renewed = openPingStream(client, await testToken(riderId, "rider", "london"));
        await expectAck(renewed, 2n);
        expect(await storedSeq(riderId)).toBe(2n);
        await renewed.finish();
      }),
    );
    await expectAck(longLived, 2n);
    await longLived.finish();
  }, 15_000);

  test("an upload's message after its token's exp is refused UNAUTHENTICATED `token expired` on gRPC and Connect; the pings before it stay", async () => {
    const clients = [fixture.ingest.grpc, fixture.ingest.connect];
    await Promise.all(
      clients.map(async (client) => {
        const riderId = uniqueId("rider");
        // exp is whole seconds: a 3 s token lives 2-3 s, time for the first message.
        const token = await testToken(riderId, "rider", "london", 3);
        async function* requests() {
          yield { pings: pingTrack(1) };
          // Held open past the token: its next fresh ping would become the live position.
          await waitUntil(() => Date.now() > tokenExpMs(token), 5_000, "the token's exp");
          yield { pings: pingTrack(1, { startSeq: 2n }) };
        }
        const refused = await client
          .uploadPings(requests(), { headers: { authorization: `Bearer ${token}` } })
          .catch((caught: unknown) => caught);
        expect(refused).toBeInstanceOf(ConnectError);
        expect((refused as ConnectError).code).toBe(Code.Unauthenticated);
        expect((refused as ConnectError).rawMessage).toBe("token expired");
        expect(await storedSeq(riderId)).toBe(1n);
      }),
    );
  });
});
