// One order as its customer sees it: the courier on the map with the path
// so far, pickup and drop-off, and the status timeline. Works with any token
// that may read the order (its customer, rider, dispatch, ops; its
// restaurant's token, refused the track lookup with 403, gets the status
// timeline without the map, kept current by status reads): it uses the same
// routes a customer app does.
import { orderEnded } from "../../../core/order-status";
import { createPainter, extendBounds } from "./map-canvas";
import {
  applyStatus,
  createTrack,
  ORDER_STEPS,
  type OrderSummary,
  type OrderTrack,
  type Point,
} from "./order-track";
import { planOrderView } from "./order-view-plan";
import { $, colorOf, explainRefusal, roleOf, showNotice } from "./page";
import { pollOrderStatus } from "./status-poll";
import { STATUS_POLL_EVERY_MS } from "./status-poll-plan";
import { followTrack } from "./track-socket";

const STEP_NAMES: Record<string, string> = {
  CONFIRMED: "order confirmed",
  ASSIGNED: "courier assigned",
  READY: "food ready",
  PICKED_UP: "on the way",
  DELIVERED: "delivered",
  CANCELLED: "cancelled",
};

export async function startOrderView(token: string, orderId: string, city?: string): Promise<void> {
  const canvas = $<HTMLCanvasElement>("canvas");
  const painter = createPainter(canvas);
  const headers = { authorization: `Bearer ${token}` };
  const path = `/v1/orders/${encodeURIComponent(orderId)}`;
  if (["ops", "dispatcher"].includes(roleOf(token) ?? "")) {
    const back = $<HTMLAnchorElement>("#back");
    back.href = `#${new URLSearchParams({ token, ...(city ? { city } : {}) })}`;
    back.hidden = false;
  }

  const [statusAnswer, trackAnswer] = await Promise.all([
    fetch(`${path}/status`, { headers }),
    fetch(`${path}/track`, { headers }),
  ]);
  const plan = planOrderView(statusAnswer.status, trackAnswer.status);
  if (plan.show === "refusal") {
    const failed = plan.from === "status" ? statusAnswer : trackAnswer;
    const body = (await failed.json().catch(() => ({}))) as { error?: { message?: string } };
    showNotice(explainRefusal(`order ${orderId}`, failed.status, body.error?.message));
    return;
  }
  const status = (await statusAnswer.json()) as OrderSummary;
  const track = createTrack(status);
  if (plan.show === "status only") {
    followStatus(track, `${path}/status`, headers);
    return;
  }
  const owner = (await trackAnswer.json()) as { node: string; url: string };
  track.node = { id: owner.node, url: owner.url };
  followTrack(track, {
    token,
    nodeUrl: owner.url,
    onEvent: () => renderOrderPanel(track),
    onState: () => renderOrderPanel(track),
  });
  renderOrderPanel(track);

  const frame = () => {
    painter.draw({
      // Fitted to this order only (fresh each frame, so it follows the courier).
      bounds: orderBounds(track),
      riders: [],
      tracks: [track],
      colorOf,
      picked: orderId,
    });
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}

/**
 * The status-only view (a token the track lookup refuses 403: the order's
 * restaurant): no socket, so the timeline is kept current by reading the
 * status until the order ends (status-poll.ts), and there is no map.
 */
function followStatus(track: OrderTrack, statusUrl: string, headers: Record<string, string>) {
  const { orderId } = track;
  const every = `${STATUS_POLL_EVERY_MS / 1000} s`;
  const poll: NonNullable<OrderTrack["statusPoll"]> = {
    state: "stopped",
    checkedAt: Date.now(),
    reads: 0,
  };
  track.statusPoll = poll;
  renderOrderPanel(track);
  const ended = () => showNotice(`order ${orderId} has ended: its status no longer changes.`);
  if (orderEnded(track.status)) return ended();
  showNotice(
    `order ${orderId}: this token may read the order's status but not follow its courier (403): no map; the status is read every ${every} while this page is shown.`,
  );
  pollOrderStatus(statusUrl, headers, {
    onStatus(order) {
      applyStatus(track, order.status, order.version);
      if (order.riderId) track.riderId = order.riderId;
      poll.checkedAt = Date.now();
    },
    onState(state, dueAt) {
      poll.state = state;
      poll.dueAt = dueAt;
      if (state === "asking") poll.reads += 1;
      renderOrderPanel(track);
    },
    onStop(why, refusal) {
      if (why === "order ended") ended();
      else if (why === "token expired") showNotice("The token expired: open a fresh link.");
      else if (refusal)
        showNotice(explainRefusal(`order ${orderId}`, refusal.code, refusal.message));
    },
  });
}

/** The bounds that hold one order: pickup, drop-off and the courier's path. */
export function orderBounds(track: OrderTrack) {
  const points = [track.pickup, track.dropoff, ...track.path].filter(
    (point): point is Point => point !== undefined,
  );
  return extendBounds(undefined, points);
}

/** The order panel: title, status timeline, courier, pickup, drop-off, geofences. */
export function renderOrderPanel(track: OrderTrack): void {
  $("#order-panel").hidden = false;
  $("#order-title").textContent = `Order ${track.orderId}`;
  const current = ORDER_STEPS.indexOf(track.status as (typeof ORDER_STEPS)[number]);
  const steps: string[] =
    track.status === "CANCELLED" ? [...ORDER_STEPS.slice(0, 2), "CANCELLED"] : [...ORDER_STEPS];
  $("#timeline").replaceChildren(
    ...steps.map((step, index) => {
      const item = document.createElement("li");
      const reached = step === track.status || (current >= 0 && index <= current);
      item.className = step === track.status ? "current" : reached ? "done" : "todo";
      const at = track.statusSeenAt.get(step);
      item.textContent = `${STEP_NAMES[step] ?? step}${at ? ` · ${clock(at)}` : ""}`;
      return item;
    }),
  );
  const facts: [string, string][] = [
    ["courier", track.riderId ?? "not assigned yet"],
    [
      "last position",
      track.lastFixAt ? `${Math.round((Date.now() - track.lastFixAt) / 1000)} s ago` : "–",
    ],
    ["pickup", place(track.pickup)],
    ["drop-off", place(track.dropoff)],
    ...track.fences.map((fence): [string, string] => [
      fence.fence === "left-pickup" ? "left the restaurant" : "arrived at the door",
      clock(fence.at),
    ]),
    track.statusPoll
      ? ["status read", statusReadsText(track.statusPoll)]
      : ["served by", `${track.node?.id ?? "?"} (${track.socketState})`],
  ];
  $("#order-facts").replaceChildren(
    ...facts.flatMap(([name, value]) => {
      const term = document.createElement("dt");
      term.textContent = name;
      const detail = document.createElement("dd");
      detail.textContent = value;
      return [term, detail];
    }),
  );
  document.body.dataset.orderStatus = track.status;
  document.body.dataset.frames = String(track.frames);
  if (track.statusPoll) {
    document.body.dataset.statusReads = String(track.statusPoll.reads);
    document.body.dataset.statusPoll = track.statusPoll.state;
  }
}

/** When the status was last read, and what happens next. */
function statusReadsText(poll: NonNullable<OrderTrack["statusPoll"]>): string {
  const last = `at ${clock(poll.checkedAt)}`;
  switch (poll.state) {
    case "waiting":
      return poll.dueAt ? `${last}; next at ${clock(poll.dueAt)}` : last;
    case "asking":
      return `${last}; reading now`;
    case "paused":
      return `${last}; paused while the page is hidden`;
    case "stopped":
      return `${last}; no more reads`;
  }
}

function clock(ms: number): string {
  return new Date(ms).toLocaleTimeString();
}

function place(point: Point | undefined): string {
  return point ? `${point.lat.toFixed(5)}, ${point.lng.toFixed(5)}` : "–";
}
