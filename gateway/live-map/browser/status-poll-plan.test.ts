import { describe, expect, test } from "bun:test";
import { createBackoff } from "../../../clients/backoff";
import {
  planNextStatusPoll,
  STATUS_POLL_BACKOFF,
  STATUS_POLL_EVERY_MS,
  type StatusAnswer,
} from "./status-poll-plan";

const answered = (status: string): StatusAnswer => ({ code: 200, retryAfter: null, status });
const refused = (code: number, retryAfter: string | null = null): StatusAnswer => ({
  code,
  retryAfter,
});
/** The backoff the page uses, with its jitter at its largest (random() → 1). */
const pageBackoff = () => createBackoff(STATUS_POLL_BACKOFF, () => 1);

describe("the status-only order view's next status read", () => {
  test("a status that has not ended is asked again after the poll interval; an ended one stops the polls", () => {
    const backoff = pageBackoff();
    for (const status of ["CONFIRMED", "ASSIGNED", "READY", "PICKED_UP"])
      expect(planNextStatusPoll(answered(status), backoff)).toEqual({
        next: "read",
        afterMs: STATUS_POLL_EVERY_MS,
        why: "on schedule",
      });
    for (const status of ["DELIVERED", "CANCELLED"])
      expect(planNextStatusPoll(answered(status), backoff)).toEqual({
        next: "stop",
        why: "order ended",
      });
  });

  test("429 waits its Retry-After even past the backoff's step; without one, the backoff", () => {
    expect(planNextStatusPoll(refused(429, "42"), pageBackoff())).toEqual({
      next: "read",
      afterMs: 42_000,
      why: "retry",
    });
    // A proxy's hour is held to clients/backoff's minute.
    expect(planNextStatusPoll(refused(429, "3600"), pageBackoff())).toMatchObject({
      afterMs: 60_000,
    });
    expect(planNextStatusPoll(refused(429), pageBackoff())).toMatchObject({
      afterMs: STATUS_POLL_EVERY_MS,
    });
  });

  test("failures back off, doubling up to a minute, and an answered status starts the steps again", () => {
    const backoff = pageBackoff();
    const failures: StatusAnswer[] = [
      refused(503, "1"),
      { code: "network error" },
      refused(500),
      refused(502),
      refused(408),
      // A 200 whose body is not the status (a captive portal, a broken proxy).
      refused(200),
    ];
    expect(failures.map((answer) => planNextStatusPoll(answer, backoff))).toEqual(
      [5_000, 10_000, 20_000, 40_000, 60_000, 60_000].map((afterMs) => ({
        next: "read",
        afterMs,
        why: "retry",
      })),
    );
    planNextStatusPoll(answered("READY"), backoff);
    expect(planNextStatusPoll(refused(503), backoff)).toMatchObject({ afterMs: 5_000 });
  });

  test("what asking again cannot change stops the polls: 401 (no way to refresh the token), 403, 404 and other 4xx", () => {
    expect(planNextStatusPoll(refused(401), pageBackoff())).toEqual({
      next: "stop",
      why: "token expired",
    });
    for (const code of [400, 403, 404, 410])
      expect(planNextStatusPoll(refused(code), pageBackoff())).toEqual({
        next: "stop",
        why: "refused",
      });
  });
});
