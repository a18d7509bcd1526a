// The live map's page script. Served by the gateway as plain JavaScript
// (types stripped at start-up), so it may import types only.
import type { TrackingFrame } from "../../../core/messages/tracking-frame";
import type { LiveOrder, LiveView } from "../live-view";

const POLL_MS = 1_000;
const MAX_TRACKED = 8;
const PATH_POINTS = 400;
const REFUSED_RETRY_MS = 15_000;
const NODE_COLORS = ["#e4572e", "#17bebb", "#a66cff", "#ffc914", "#76b041", "#ff6f91"];

interface Point {
  lat: number;
  lng: number;
}

interface RiderMarker {
  from: Point;
  to: Point;
  busy: boolean;
}

/** One order followed over its tracking node's WebSocket. */
interface TrackedOrder {
  order: LiveOrder;
  socket?: WebSocket;
  path: Point[];
  frames: number;
  afterSeq: number;
  /** The last geofence crossing, shown beside the status. */
  fence?: string;
  /** Set by a `moved` frame: where to reconnect when the node closes. */
  movedTo?: string;
  /** After a refusal (4xxx other than moved) the next try waits until then. */
  retryAfter: number;
  closed: boolean;
}

const params = new URLSearchParams(location.hash.slice(1));
const token = params.get("token") ?? "";
const canvas = document.querySelector("canvas") as HTMLCanvasElement;
const context = canvas.getContext("2d") as CanvasRenderingContext2D;
const citySelect = document.querySelector("#city") as HTMLSelectElement;
const counters = document.querySelector("#counters") as HTMLElement;
const orderList = document.querySelector("#orders") as HTMLElement;
const notice = document.querySelector("#notice") as HTMLElement;

let city = params.get("city") ?? "";
let view: LiveView | undefined;
let viewAt = performance.now();
let bounds: { south: number; north: number; west: number; east: number } | undefined;
const riders = new Map<string, RiderMarker>();
const tracked = new Map<string, TrackedOrder>();
const nodeColors = new Map<string, string>();

function colorOf(nodeId: string | undefined): string {
  if (!nodeId) return "#888";
  let color = nodeColors.get(nodeId);
  if (!color) {
    color = NODE_COLORS[nodeColors.size % NODE_COLORS.length] ?? "#888";
    nodeColors.set(nodeId, color);
  }
  return color;
}

function showNotice(text: string): void {
  notice.textContent = text;
  notice.hidden = text === "";
}

async function poll(): Promise<void> {
  const query = city ? `?city=${encodeURIComponent(city)}` : "?city=london";
  const response = await fetch(`/v1/ops/live${query}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  if (!response.ok) {
    const body = (await response.json().catch(() => ({}))) as { error?: { message?: string } };
    showNotice(`live view: ${response.status} ${body.error?.message ?? ""}`);
    return;
  }
  showNotice("");
  const next = (await response.json()) as LiveView;
  // A poll sent before the city was changed answers for the old city.
  if (!city || next.city === city) applyView(next);
}

function applyView(next: LiveView): void {
  if (!city) city = next.city;
  updateCities(next.cities);
  const now = performance.now();
  const seen = new Set<string>();
  for (const rider of next.riders) {
    seen.add(rider.riderId);
    const marker = riders.get(rider.riderId);
    const at = { lat: rider.lat, lng: rider.lng };
    // Each marker glides from where it is drawn now to its new position.
    const from = marker ? interpolate(marker, progress(now)) : at;
    riders.set(rider.riderId, { from, to: at, busy: rider.orderIds.length > 0 });
  }
  for (const riderId of riders.keys()) if (!seen.has(riderId)) riders.delete(riderId);
  view = next;
  viewAt = now;
  fitBounds(next);
  followOrders(next.orders);
  renderCounters(next);
}

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

/** Grows the drawn area to hold every rider and stop; it never jumps back. */
function fitBounds(next: LiveView): void {
  const points: Point[] = [
    ...next.riders,
    ...next.orders.flatMap((order) => [order.pickup, order.dropoff]),
  ];
  for (const { lat, lng } of points) {
    if (!bounds) bounds = { south: lat, north: lat, west: lng, east: lng };
    bounds.south = Math.min(bounds.south, lat);
    bounds.north = Math.max(bounds.north, lat);
    bounds.west = Math.min(bounds.west, lng);
    bounds.east = Math.max(bounds.east, lng);
  }
}

function followOrders(orders: readonly LiveOrder[]): void {
  const active = orders.filter((order) => order.status !== "DELIVERED" && order.riderId);
  const keep = new Set(active.slice(0, MAX_TRACKED).map((order) => order.orderId));
  for (const [orderId, entry] of tracked) {
    if (!keep.has(orderId)) {
      entry.closed = true;
      entry.socket?.close(1000);
      tracked.delete(orderId);
    }
  }
  for (const order of active) {
    if (!keep.has(order.orderId)) continue;
    const entry = tracked.get(order.orderId);
    if (entry) {
      // The socket's status frames may be newer than the poll.
      if (order.version >= entry.order.version) entry.order = order;
      if (!entry.socket && order.node && performance.now() >= entry.retryAfter)
        connect(entry, order.node.url);
      continue;
    }
    const fresh: TrackedOrder = {
      order,
      path: [],
      frames: 0,
      afterSeq: 0,
      closed: false,
      retryAfter: 0,
    };
    tracked.set(order.orderId, fresh);
    if (order.node) connect(fresh, order.node.url);
  }
  renderOrderList();
}

/** Watches one order on its node; `moved` sends it to the new owner, other closes wait for the next poll. */
function connect(entry: TrackedOrder, nodeUrl: string): void {
  const url = new URL(`${nodeUrl}/v1/orders/${encodeURIComponent(entry.order.orderId)}/track`);
  if (entry.afterSeq > 0) url.searchParams.set("afterSeq", String(entry.afterSeq));
  const socket = new WebSocket(url, ["tracking.v1.json", `bearer.${token}`]);
  entry.socket = socket;
  socket.onmessage = (message) => {
    const frame = JSON.parse(String(message.data)) as TrackingFrame;
    entry.frames += 1;
    if (frame.type === "position") {
      entry.afterSeq = Math.max(entry.afterSeq, frame.seq);
      entry.path.push({ lat: frame.lat, lng: frame.lng });
      if (entry.path.length > PATH_POINTS) entry.path.shift();
    } else if (frame.type === "status") {
      entry.order = { ...entry.order, status: frame.status, version: frame.version };
      renderOrderList();
    } else if (frame.type === "moved") {
      entry.movedTo = frame.url;
    } else if (frame.type === "geofence") {
      entry.fence = frame.fence === "left_pickup" ? "left the restaurant" : "at the door";
      renderOrderList();
    }
  };
  socket.onclose = (event) => {
    if (entry.socket !== socket) return;
    entry.socket = undefined;
    if (entry.closed) return;
    // `moved` (4001) and drain (1012) name the new owner first; other closes retry on the next poll.
    const { movedTo } = entry;
    entry.movedTo = undefined;
    if (movedTo && (event.code === 4001 || event.code === 1012)) connect(entry, movedTo);
    else if (event.code >= 4000) entry.retryAfter = performance.now() + REFUSED_RETRY_MS;
  };
}

function progress(now: number): number {
  return Math.min(1, (now - viewAt) / POLL_MS);
}

function interpolate(marker: RiderMarker, t: number): Point {
  return {
    lat: marker.from.lat + (marker.to.lat - marker.from.lat) * t,
    lng: marker.from.lng + (marker.to.lng - marker.from.lng) * t,
  };
}

function renderCounters(next: LiveView): void {
  const { totals } = next;
  const p99 = totals.fanoutP99Ms === undefined ? "–" : `≤ ${totals.fanoutP99Ms.toFixed(1)} ms`;
  const frames = [...tracked.values()].reduce((sum, entry) => sum + entry.frames, 0);
  counters.replaceChildren(
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
    ...next.nodes.map((node) => {
      const item = document.createElement("div");
      item.className = "node";
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

function renderOrderList(): void {
  orderList.replaceChildren(
    ...[...tracked.values()].map(({ order, fence }) => {
      const item = document.createElement("li");
      item.style.borderColor = colorOf(order.node?.id);
      const status = fence ? `${order.status} (${fence})` : order.status;
      item.textContent = `${order.orderId} · ${status} · node ${order.node?.id ?? "none"}`;
      return item;
    }),
  );
}

function draw(): void {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (canvas.width !== width * ratio || canvas.height !== height * ratio) {
    canvas.width = width * ratio;
    canvas.height = height * ratio;
  }
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.fillStyle = "#10151c";
  context.fillRect(0, 0, width, height);
  if (bounds && view) {
    const project = projection(bounds, width, height);
    drawGrid(project, bounds);
    for (const entry of tracked.values()) drawOrder(project, entry);
    const t = progress(performance.now());
    for (const marker of riders.values()) {
      const { x, y } = project(interpolate(marker, t));
      context.fillStyle = marker.busy ? "#ffb347" : "#6fa8dc";
      context.beginPath();
      context.arc(x, y, marker.busy ? 4 : 3, 0, Math.PI * 2);
      context.fill();
    }
  }
  requestAnimationFrame(draw);
}

/** Equirectangular around the area's middle latitude: fine at city scale. */
function projection(area: NonNullable<typeof bounds>, width: number, height: number) {
  const pad = 24;
  const shrink = Math.cos((((area.north + area.south) / 2) * Math.PI) / 180);
  const spanX = Math.max((area.east - area.west) * shrink, 1e-4);
  const spanY = Math.max(area.north - area.south, 1e-4);
  const scale = Math.min((width - 2 * pad) / spanX, (height - 2 * pad) / spanY);
  const offsetX = (width - spanX * scale) / 2;
  const offsetY = (height - spanY * scale) / 2;
  return ({ lat, lng }: Point) => ({
    x: offsetX + (lng - area.west) * shrink * scale,
    y: offsetY + (area.north - lat) * scale,
  });
}

function drawGrid(project: ReturnType<typeof projection>, area: NonNullable<typeof bounds>): void {
  // Lines every ~500 m, as a sense of scale (no map tiles are fetched).
  const stepLat = 500 / 111_320;
  const stepLng = stepLat / Math.cos((area.south * Math.PI) / 180);
  context.strokeStyle = "#1e2935";
  context.lineWidth = 1;
  context.beginPath();
  for (let lat = Math.ceil(area.south / stepLat) * stepLat; lat <= area.north; lat += stepLat) {
    const a = project({ lat, lng: area.west });
    const b = project({ lat, lng: area.east });
    context.moveTo(a.x, a.y);
    context.lineTo(b.x, b.y);
  }
  for (let lng = Math.ceil(area.west / stepLng) * stepLng; lng <= area.east; lng += stepLng) {
    const a = project({ lat: area.south, lng });
    const b = project({ lat: area.north, lng });
    context.moveTo(a.x, a.y);
    context.lineTo(b.x, b.y);
  }
  context.stroke();
}

function drawOrder(project: ReturnType<typeof projection>, entry: TrackedOrder): void {
  const { order, path } = entry;
  const color = colorOf(order.node?.id);
  const pickup = project(order.pickup);
  const dropoff = project(order.dropoff);
  context.strokeStyle = color;
  context.globalAlpha = 0.35;
  context.setLineDash([4, 4]);
  context.beginPath();
  context.moveTo(pickup.x, pickup.y);
  context.lineTo(dropoff.x, dropoff.y);
  context.stroke();
  context.setLineDash([]);
  context.globalAlpha = 1;
  if (path.length > 1) {
    context.lineWidth = 2;
    context.beginPath();
    path.forEach((point, index) => {
      const { x, y } = project(point);
      if (index === 0) context.moveTo(x, y);
      else context.lineTo(x, y);
    });
    context.stroke();
    context.lineWidth = 1;
  }
  // Pickup: a square; drop-off: a ring; the courier: the path's end.
  context.fillStyle = color;
  context.fillRect(pickup.x - 5, pickup.y - 5, 10, 10);
  context.beginPath();
  context.arc(dropoff.x, dropoff.y, 6, 0, Math.PI * 2);
  context.stroke();
  const courier = path.at(-1);
  if (courier) {
    const { x, y } = project(courier);
    context.beginPath();
    context.arc(x, y, 6, 0, Math.PI * 2);
    context.fill();
    context.fillStyle = "#e6edf3";
    context.font = "11px system-ui, sans-serif";
    context.fillText(
      `${order.orderId.slice(0, 8)} ${order.status} @${order.node?.id ?? "?"}`,
      x + 8,
      y - 8,
    );
  }
}

citySelect.addEventListener("change", () => {
  city = citySelect.value;
  bounds = undefined;
  riders.clear();
  for (const entry of tracked.values()) {
    entry.closed = true;
    entry.socket?.close(1000);
  }
  tracked.clear();
  void poll();
});

if (!token) {
  showNotice("Open this page with #token=<a dispatcher or ops JWT> (the demo prints the link).");
} else {
  const loop = () =>
    poll()
      .catch((error: unknown) => showNotice(`live view unreachable: ${String(error)}`))
      .finally(() => setTimeout(loop, POLL_MS));
  void loop();
}
requestAnimationFrame(draw);
