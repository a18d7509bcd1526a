// The operator's map: polls GET /v1/ops/live each second, glides riders to
// their new positions, and follows a stable set of orders over their
// tracking nodes' WebSockets (follow-set.ts decides which).
import type { LiveOrder, LiveView } from "../live-view";
import { createFollowSet, ENDED_STATUSES, type FollowChange } from "./follow-set";
import { type Bounds, createPainter, extendBounds } from "./map-canvas";
import { applyStatus, createTrack, type OrderTrack, type Point } from "./order-track";
import { orderBounds, renderOrderPanel } from "./order-view";
import { $, colorOf, explainRefusal, showNotice } from "./page";
import { followTrack } from "./track-socket";

const POLL_MS = 1_000;
const MAX_FOLLOWED = 8;
/** How near (px) a tap must be to a courier or pickup to pick its order. */
const TAP_RADIUS = 24;

interface RiderMarker {
  from: Point;
  to: Point;
  busy: boolean;
}

export function startMapView(token: string, initialCity: string | undefined): void {
  const canvas = $<HTMLCanvasElement>("canvas");
  const painter = createPainter(canvas);
  const citySelect = $<HTMLSelectElement>("#city");
  const follows = createFollowSet(MAX_FOLLOWED);
  const tracks = new Map<string, OrderTrack>();
  const riders = new Map<string, RiderMarker>();
  let city = initialCity;
  let bounds: Bounds | undefined;
  let view: LiveView | undefined;
  let viewAt = performance.now();
  $("#map-panel").hidden = false;
  $("#city-picker").hidden = false;
  const back = $<HTMLAnchorElement>("#back");

  const progress = () => Math.min(1, (performance.now() - viewAt) / POLL_MS);
  const glide = (marker: RiderMarker, t: number): Point => ({
    lat: marker.from.lat + (marker.to.lat - marker.from.lat) * t,
    lng: marker.from.lng + (marker.to.lng - marker.from.lng) * t,
  });

  function follow(order: LiveOrder): void {
    const track = createTrack(order);
    tracks.set(order.orderId, track);
    if (!order.node) return;
    track.socket = followTrack(track, {
      token,
      // The poll names the owner: no lookup for the first socket (the client asks the gateway after a failure).
      nodeUrl: order.node.url,
      onEvent: (event) => {
        if (event.kind === "status" && ENDED_STATUSES.has(event.status))
          follows.markEnded(track.orderId);
        if (event.kind !== "position") renderOrders();
        if (track.orderId === follows.picked) renderOrderPanel(track);
      },
    });
  }

  function unfollow(orderId: string): void {
    tracks.get(orderId)?.socket?.close();
    tracks.delete(orderId);
  }

  function apply(next: LiveView): void {
    city ??= next.city;
    updateCities(next.cities);
    const now = performance.now();
    const seen = new Set<string>();
    for (const rider of next.riders) {
      seen.add(rider.riderId);
      const marker = riders.get(rider.riderId);
      const at = { lat: rider.lat, lng: rider.lng };
      const from = marker ? glide(marker, progress()) : at;
      riders.set(rider.riderId, { from, to: at, busy: rider.orderIds.length > 0 });
    }
    for (const riderId of riders.keys()) if (!seen.has(riderId)) riders.delete(riderId);
    view = next;
    viewAt = now;
    bounds = extendBounds(bounds, [
      ...next.riders,
      ...next.orders.flatMap((order) => [order.pickup, order.dropoff]),
    ]);
    applyChange(follows.update(next.orders));
    const byId = new Map(next.orders.map((order) => [order.orderId, order]));
    for (const track of tracks.values()) {
      const order = byId.get(track.orderId);
      if (!order) continue;
      applyStatus(track, order.status, order.version);
      track.node = order.node;
      track.riderId ??= order.riderId;
    }
    renderCounters(next);
    renderOrders();
  }

  function applyChange(change: FollowChange): void {
    for (const orderId of change.stop) unfollow(orderId);
    for (const orderId of change.start) {
      const order = view?.orders.find((candidate) => candidate.orderId === orderId);
      if (order) follow(order);
    }
  }

  /** Shows one order as its customer sees it, on top of the map (or none: back to the city). */
  function pick(orderId: string | undefined): void {
    applyChange(follows.pick(orderId));
    const track = orderId ? tracks.get(orderId) : undefined;
    // On a phone the sheet below the map has room for one of the two panels.
    $("#order-panel").hidden = !track;
    $("#map-panel").hidden = Boolean(track);
    back.hidden = !track;
    if (track) renderOrderPanel(track);
    renderOrders();
  }

  back.addEventListener("click", (event) => {
    event.preventDefault();
    pick(undefined);
  });

  function updateCities(cities: readonly string[]): void {
    const current = [...citySelect.options].map((option) => option.value).join(",");
    if (current === cities.join(",")) return;
    citySelect.replaceChildren(
      ...cities.map((id) => {
        const option = document.createElement("option");
        option.value = id;
        option.textContent = id;
        option.selected = id === city;
        return option;
      }),
    );
  }

  function renderCounters(next: LiveView): void {
    const { totals } = next;
    const p99 = totals.fanoutP99Ms === undefined ? "–" : `≤ ${totals.fanoutP99Ms.toFixed(1)} ms`;
    const frames = [...tracks.values()].reduce((sum, track) => sum + track.frames, 0);
    $("#counters").replaceChildren(
      ...[
        ["pings/s", totals.pingsPerSecond.toFixed(0)],
        ["sockets", String(totals.sockets)],
        ["fan-out p99", p99],
        ["riders", String(next.riders.length)],
        ["orders", String(next.orders.length)],
        ["frames here", String(frames)],
      ].map(([label, value]) => {
        const item = document.createElement("div");
        const strong = document.createElement("strong");
        strong.textContent = value ?? "";
        item.append(strong, ` ${label}`);
        return item;
      }),
    );
    $("#node-list").replaceChildren(
      ...next.nodes.map((node) => {
        const item = document.createElement("div");
        item.style.color = node.tier === "tracking" ? colorOf(node.nodeId) : "";
        const figures = Object.entries(node.figures)
          .map(([name, value]) => `${name} ${Number.isInteger(value) ? value : value.toFixed(1)}`)
          .join(", ");
        item.textContent = `${node.tier} ${node.nodeId}: ${figures}`;
        return item;
      }),
    );
    document.body.dataset.riders = String(next.riders.length);
    document.body.dataset.frames = String(frames);
  }

  function renderOrders(): void {
    $("#orders").replaceChildren(
      ...follows.orderIds.flatMap((orderId) => {
        const track = tracks.get(orderId);
        if (!track) return [];
        const item = document.createElement("li");
        const button = document.createElement("button");
        button.style.borderColor = colorOf(track.node?.id);
        const fence = track.fences.at(-1)?.fence;
        const note =
          fence === "left-pickup" ? " (left the restaurant)" : fence ? " (at the door)" : "";
        button.textContent = `${orderId} · ${track.status}${note} · node ${track.node?.id ?? "none"}`;
        button.addEventListener("click", () => pick(orderId));
        item.append(button);
        return [item];
      }),
    );
    document.body.dataset.follows = follows.orderIds.join(",");
  }

  /** A tap near a followed courier (or its pickup) picks that order. */
  canvas.addEventListener("click", (event) => {
    const project = painter.projection;
    if (!project) return;
    const rect = canvas.getBoundingClientRect();
    const tap = { x: event.clientX - rect.left, y: event.clientY - rect.top };
    let best: { orderId: string; distance: number } | undefined;
    for (const track of tracks.values()) {
      for (const point of [track.path.at(-1), track.pickup]) {
        if (!point) continue;
        const { x, y } = project(point);
        const distance = Math.hypot(x - tap.x, y - tap.y);
        if (distance <= TAP_RADIUS && (!best || distance < best.distance))
          best = { orderId: track.orderId, distance };
      }
    }
    if (best) pick(best.orderId);
  });

  citySelect.addEventListener("change", () => {
    location.hash = new URLSearchParams({ token, city: citySelect.value }).toString();
  });

  async function poll(): Promise<void> {
    const response = await fetch(`/v1/ops/live?city=${encodeURIComponent(city ?? "london")}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const body = (await response.json().catch(() => ({}))) as LiveView & {
      error?: { message?: string };
    };
    if (!response.ok) {
      showNotice(explainRefusal("live view", response.status, body.error?.message));
      return;
    }
    showNotice("");
    // A poll sent before the city was changed answers for the old city.
    if (!city || body.city === city) apply(body);
  }

  const loop = () =>
    poll()
      .catch((error: unknown) => showNotice(`live view unreachable: ${String(error)}`))
      .finally(() => setTimeout(loop, POLL_MS));
  void loop();

  const frame = () => {
    const t = progress();
    const picked = follows.picked ? tracks.get(follows.picked) : undefined;
    painter.draw({
      bounds: picked ? orderBounds(picked) : bounds,
      riders: [...riders.values()].map((marker) => ({ at: glide(marker, t), busy: marker.busy })),
      tracks: [...tracks.values()],
      colorOf,
      picked: picked?.orderId,
    });
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}
