import { expect, test } from "bun:test";
import { parseStoredPosition } from "../../core/position/position-forms";
import { keys } from "../../core/redis/keys";
import { useIngestOnRedis } from "../../test/support/ingest";
import { testToken, tokenExpMs, uniqueId } from "../../test/support/tokens";
import { waitUntil } from "../../test/support/wait";
import { DEMO_CITIES } from "./cities";
import { seededRandom } from "./simulated-city";
import { SimulatedRider } from "./simulated-rider";

const fixture = useIngestOnRedis();

test("a simulated rider keeps streaming past its token's exp: the ingest ends the stream there and the rider goes on with a fresh token", async () => {
  const riderId = uniqueId("rider");
  const city = DEMO_CITIES[0];
  if (!city) throw new Error("no demo city");
  // Short-lived tokens stand in for the demo's day-long ones.
  const shortToken = () => testToken(riderId, "rider", city.id, 2);
  const token = await shortToken();
  let refreshed = 0;
  const controller = new AbortController();
  const rider = new SimulatedRider({
    riderId,
    center: city.center,
    token,
    refreshToken: () => {
      refreshed += 1;
      return shortToken();
    },
    client: fixture.ingest.grpc,
    random: seededRandom(7),
  });
  const running = rider.run(controller.signal);
  try {
    // A fix taken after the first token's exp reached the ingest and was stored.
    const recordedAtMs = async () =>
      parseStoredPosition(await fixture.db.get(keys.riderPosition(riderId)))?.recordedAtMs ?? 0;
    await waitUntil(
      async () => (await recordedAtMs()) > tokenExpMs(token),
      10_000,
      "a position recorded after the first token's exp",
    );
    expect(refreshed).toBeGreaterThanOrEqual(1);
  } finally {
    controller.abort();
    await running;
  }
}, 15_000);
