// When a status-only order view (the order's restaurant: no socket) asks
// for the order's status again, apart from the DOM and timers so it can be
// tested: each answer decides whether to ask again, and after how long.
import { type Backoff, type BackoffOptions, retryAfterMs } from "../../../clients/backoff";
import { orderEnded } from "../../../core/order-status";

/**
 * How often the page asks while all is well. A status moves every few
 * minutes; 12 reads a minute per open order leaves a restaurant's token room
 * for dozens of open orders inside the default RATE_LIMIT_REQUESTS (600 a
 * minute per identity, shared with its other calls).
 */
export const STATUS_POLL_EVERY_MS = 5_000;

/** After a failure: from the poll interval, doubling with jitter, up to a minute. */
export const STATUS_POLL_BACKOFF: BackoffOptions = { firstMs: STATUS_POLL_EVERY_MS, maxMs: 60_000 };

/** One answer to `GET /v1/orders/{id}/status`, as far as the schedule cares. */
export type StatusAnswer =
  /** No answer: the network, or the server went away mid-answer. */
  | { readonly code: "network error" }
  /** `status` is the answer's, when a 2xx body could be read (a captive portal's 200 cannot). */
  | { readonly code: number; readonly retryAfter: string | null; readonly status?: string };

export type NextStatusPoll =
  | { readonly next: "read"; readonly afterMs: number; readonly why: "on schedule" | "retry" }
  | { readonly next: "stop"; readonly why: "order ended" | "token expired" | "refused" };

/**
 * The order's end (DELIVERED, CANCELLED) stops the polls, as do 401 (the
 * page cannot refresh its token), 403 and 404 (an ended order's record
 * expired) and any other 4xx but 408 and 429: asking again cannot change
 * them. Everything else (429, 5xx, 408, no answer, an unreadable 200) is
 * asked again after the backoff's next step, and never sooner than the
 * answer's `Retry-After` (capped at clients/backoff's minute).
 */
export function planNextStatusPoll(answer: StatusAnswer, backoff: Backoff): NextStatusPoll {
  const { code } = answer;
  if (code !== "network error" && code >= 200 && code < 300 && answer.status !== undefined) {
    backoff.reset();
    if (orderEnded(answer.status)) return { next: "stop", why: "order ended" };
    return { next: "read", afterMs: STATUS_POLL_EVERY_MS, why: "on schedule" };
  }
  if (code === 401) return { next: "stop", why: "token expired" };
  if (code !== "network error" && code >= 400 && code < 500 && code !== 408 && code !== 429)
    return { next: "stop", why: "refused" };
  const retryAfter = code === "network error" ? 0 : retryAfterMs(answer.retryAfter);
  return { next: "read", afterMs: Math.max(backoff.next(), retryAfter), why: "retry" };
}
