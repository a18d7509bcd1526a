// One order as its customer sees it: the courier on the map with the path
// so far, pickup and drop-off, and the status timeline. Works with any token
// that may read the order (its customer, rider, dispatch, ops; its
// restaurant's token, refused the track lookup with 403, gets the status
// timeline without the map): it uses the same routes a customer app does.
import { createPainter, extendBounds } from "./map-canvas";
import { createTrack, ORDER_STEPS, type OrderTrack, type Point } from "./order-track";
import { planOrderView } from "./order-view-plan";
import { $, colorOf, explainRefusal, roleOf, showNotice } from "./page";
import { followTrack } from "./track-socket";

interface OrderStatus {
  orderId: string;
  status: string;
  version: number;
  riderId?: string;
  pickup?: Point;
  dropoff?: Point;
}

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
  const status = (await statusAnswer.json()) as OrderStatus;
  const track = createTrack(status);
  if (plan.show === "status only") {
    // No socket to follow: the timeline is the status as loaded.
    track.socketState = "stopped";
    renderOrderPanel(track);
    showNotice(
      `order ${orderId}: this token may read the order's status but not follow its courier (403): no map; reload for a newer status.`,
    );
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
    ["served by", `${track.node?.id ?? "?"} (${track.socketState})`],
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
}

function clock(ms: number): string {
  return new Date(ms).toLocaleTimeString();
}

function place(point: Point | undefined): string {
  return point ? `${point.lat.toFixed(5)}, ${point.lng.toFixed(5)}` : "–";
}
