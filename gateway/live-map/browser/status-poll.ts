// Keeps a status-only order view current: the order's restaurant may read
// its status but not watch its courier, so no tracking socket brings it
// status events; the page asks `GET /v1/orders/{id}/status` instead, on
// status-poll-plan's schedule, and only while someone can see it.
import { createBackoff } from "../../../clients/backoff";
import {
  type NextStatusPoll,
  planNextStatusPoll,
  STATUS_POLL_BACKOFF,
  STATUS_POLL_EVERY_MS,
  type StatusAnswer,
} from "./status-poll-plan";

export interface PolledStatus {
  status: string;
  version: number;
  riderId?: string;
}

/** Where the polls stand: `paused` while the page is hidden; `stopped` for good. */
export type StatusPollState = "waiting" | "asking" | "paused" | "stopped";

export interface StatusPollEvents {
  /** Each status read (the same one again too: the caller keeps the newest version). */
  onStatus(order: PolledStatus): void;
  /** Each change of state, with when the next read is due while `waiting`. */
  onState(state: StatusPollState, dueAt?: number): void;
  /** Why the polls stopped; a refusal's HTTP status and the server's message. */
  onStop(why: Extract<NextStatusPoll, { next: "stop" }>["why"], refusal?: Refusal): void;
}

export interface Refusal {
  code: number;
  message?: string;
}

/**
 * Reads `statusUrl` with `headers` every STATUS_POLL_EVERY_MS from now
 * (the caller has just read it), backing off on failures, never sooner than
 * a Retry-After. A hidden page asks nothing; shown again, it asks at once if
 * a read fell due meanwhile. A page being closed or navigated away is
 * hidden first (visibilitychange comes before pagehide), and its timer goes
 * with it. `stop()` ends the polls from outside.
 */
export function pollOrderStatus(
  statusUrl: string,
  headers: Record<string, string>,
  events: StatusPollEvents,
): { stop(): void } {
  const backoff = createBackoff(STATUS_POLL_BACKOFF);
  let dueAt = Date.now() + STATUS_POLL_EVERY_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let asking = false;
  let stopped = false;

  function schedule(): void {
    clearTimeout(timer);
    timer = undefined;
    if (stopped || asking) return;
    if (document.visibilityState === "hidden") {
      events.onState("paused");
      return;
    }
    timer = setTimeout(ask, Math.max(0, dueAt - Date.now()));
    events.onState("waiting", dueAt);
  }

  async function ask(): Promise<void> {
    timer = undefined;
    asking = true;
    events.onState("asking");
    const { answer, order, refusal } = await readStatus(statusUrl, headers);
    asking = false;
    if (stopped) return;
    if (order) events.onStatus(order);
    const plan = planNextStatusPoll(answer, backoff);
    if (plan.next === "stop") {
      stop();
      events.onStop(plan.why, refusal);
      return;
    }
    dueAt = Date.now() + plan.afterMs;
    schedule();
  }

  function stop(): void {
    if (stopped) return;
    stopped = true;
    clearTimeout(timer);
    document.removeEventListener("visibilitychange", schedule);
    events.onState("stopped");
  }

  document.addEventListener("visibilitychange", schedule);
  schedule();
  return { stop };
}

/** One read: its answer for the schedule, the status when there is one, or what a refusal said. */
async function readStatus(
  url: string,
  headers: Record<string, string>,
): Promise<{ answer: StatusAnswer; order?: PolledStatus; refusal?: Refusal }> {
  let response: Response;
  let body: unknown;
  try {
    response = await fetch(url, { headers });
    body = await response.json().catch(() => undefined);
  } catch {
    return { answer: { code: "network error" } };
  }
  const retryAfter = response.headers.get("retry-after");
  if (!response.ok) {
    const message = (body as { error?: { message?: unknown } } | undefined)?.error?.message;
    const refusal = { code: response.status, ...(typeof message === "string" ? { message } : {}) };
    return { answer: { code: response.status, retryAfter }, refusal };
  }
  const order = polledStatusOf(body);
  if (!order) return { answer: { code: response.status, retryAfter } };
  return { answer: { code: response.status, retryAfter, status: order.status }, order };
}

function polledStatusOf(body: unknown): PolledStatus | undefined {
  const { status, version, riderId } = (body ?? {}) as Record<string, unknown>;
  if (typeof status !== "string" || typeof version !== "number") return undefined;
  return { status, version, ...(typeof riderId === "string" ? { riderId } : {}) };
}
