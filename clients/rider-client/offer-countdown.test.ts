import { expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { RideOfferSchema } from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { offerCountdown } from "./offer-countdown";

// An offer as a phone receives it: its time left as sent, and its expiry read on the phone's clock.
const offer = (fields: { expiresInMs: number; expiresAtByDeviceMs: number }) =>
  create(RideOfferSchema, {
    orderId: "o1",
    fencingToken: "o1:1",
    expiresAtMs: BigInt(fields.expiresAtByDeviceMs),
    expiresInMs: fields.expiresInMs,
  });

test("a phone clock 30 s ahead of the server's still counts down the time the offer was sent with", () => {
  // 25 s left as sent; by this phone's clock, its expires_at_ms went by 5 s ago.
  const timeLeft = offerCountdown(
    offer({ expiresInMs: 25_000, expiresAtByDeviceMs: Date.now() - 5_000 }),
  );
  const left = timeLeft();
  expect(left).toBeGreaterThan(0);
  expect(left).toBeLessThanOrEqual(25_000);
});

test("a phone clock 30 s behind the server's is not told it has longer than the offer was sent with", () => {
  const timeLeft = offerCountdown(
    offer({ expiresInMs: 25_000, expiresAtByDeviceMs: Date.now() + 55_000 }),
  );
  expect(timeLeft()).toBeLessThanOrEqual(25_000);
});

test("an offer from a server that predates expires_in_ms (0) is counted to expires_at_ms on the device's clock", () => {
  const timeLeft = offerCountdown(
    offer({ expiresInMs: 0, expiresAtByDeviceMs: Date.now() + 10_000 }),
  );
  const left = timeLeft();
  expect(left).toBeGreaterThan(0);
  expect(left).toBeLessThanOrEqual(10_000);
  const spent = offerCountdown(offer({ expiresInMs: 0, expiresAtByDeviceMs: Date.now() - 1 }));
  expect(spent()).toBe(0);
});
