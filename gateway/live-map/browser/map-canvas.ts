// Draws the map on the canvas: a ~500 m grid for scale (no tiles are
// fetched), riders, and each followed order's pickup, drop-off, path and
// courier, with labels placed so they never overlap.
import { placeLabels } from "./map-labels";
import type { OrderTrack, Point } from "./order-track";

export interface Bounds {
  south: number;
  north: number;
  west: number;
  east: number;
}

export interface Scene {
  bounds?: Bounds;
  riders: { at: Point; busy: boolean }[];
  tracks: OrderTrack[];
  colorOf: (nodeId: string | undefined) => string;
  /** The picked order: drawn last, labelled first. */
  picked?: string;
}

export type Projection = (point: Point) => { x: number; y: number };

/** Grows `bounds` to hold the points (it never shrinks, so the picture does not jump). */
export function extendBounds(
  bounds: Bounds | undefined,
  points: readonly Point[],
): Bounds | undefined {
  let next = bounds;
  for (const { lat, lng } of points) {
    if (!next) next = { south: lat, north: lat, west: lng, east: lng };
    next.south = Math.min(next.south, lat);
    next.north = Math.max(next.north, lat);
    next.west = Math.min(next.west, lng);
    next.east = Math.max(next.east, lng);
  }
  return next;
}

/** Equirectangular around the area's middle latitude: fine at city scale. */
function projection(area: Bounds, width: number, height: number): Projection {
  const pad = 24;
  const shrink = Math.cos((((area.north + area.south) / 2) * Math.PI) / 180);
  const spanX = Math.max((area.east - area.west) * shrink, 1e-3);
  const spanY = Math.max(area.north - area.south, 1e-3);
  const scale = Math.min((width - 2 * pad) / spanX, (height - 2 * pad) / spanY);
  const offsetX = (width - (area.east - area.west) * shrink * scale) / 2;
  const offsetY = (height - (area.north - area.south) * scale) / 2;
  return ({ lat, lng }) => ({
    x: offsetX + (lng - area.west) * shrink * scale,
    y: offsetY + (area.north - lat) * scale,
  });
}

export function createPainter(canvas: HTMLCanvasElement) {
  const context = canvas.getContext("2d") as CanvasRenderingContext2D;
  let last: Projection | undefined;

  function grid(project: Projection, area: Bounds): void {
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

  function order(project: Projection, track: OrderTrack, color: string, picked: boolean): void {
    context.strokeStyle = color;
    context.fillStyle = color;
    const pickup = track.pickup && project(track.pickup);
    const dropoff = track.dropoff && project(track.dropoff);
    if (pickup && dropoff) {
      context.globalAlpha = 0.35;
      context.setLineDash([4, 4]);
      context.beginPath();
      context.moveTo(pickup.x, pickup.y);
      context.lineTo(dropoff.x, dropoff.y);
      context.stroke();
      context.setLineDash([]);
      context.globalAlpha = 1;
    }
    if (track.path.length > 1) {
      context.lineWidth = picked ? 3 : 2;
      context.beginPath();
      track.path.forEach((point, index) => {
        const { x, y } = project(point);
        if (index === 0) context.moveTo(x, y);
        else context.lineTo(x, y);
      });
      context.stroke();
      context.lineWidth = 1;
    }
    if (pickup) context.fillRect(pickup.x - 5, pickup.y - 5, 10, 10);
    if (dropoff) {
      context.beginPath();
      context.arc(dropoff.x, dropoff.y, 6, 0, Math.PI * 2);
      context.stroke();
    }
    const courier = track.path.at(-1);
    if (courier) {
      const { x, y } = project(courier);
      context.beginPath();
      context.arc(x, y, picked ? 8 : 6, 0, Math.PI * 2);
      context.fill();
    }
  }

  return {
    /** The projection of the last frame drawn, for turning a tap into a place. */
    get projection(): Projection | undefined {
      return last;
    },

    draw(scene: Scene): void {
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
      const { bounds } = scene;
      if (!bounds) return;
      const project = projection(bounds, width, height);
      last = project;
      grid(project, bounds);
      const tracks = [...scene.tracks].sort(
        (a, b) => Number(a.orderId === scene.picked) - Number(b.orderId === scene.picked),
      );
      for (const track of tracks)
        order(project, track, scene.colorOf(track.node?.id), track.orderId === scene.picked);
      for (const rider of scene.riders) {
        const { x, y } = project(rider.at);
        context.fillStyle = rider.busy ? "#ffb347" : "#6fa8dc";
        context.beginPath();
        context.arc(x, y, rider.busy ? 4 : 3, 0, Math.PI * 2);
        context.fill();
      }
      // Labels last, the picked order's first, each only where it has room.
      context.font = "11px system-ui, sans-serif";
      const requests = tracks.reverse().flatMap((track) => {
        const courier = track.path.at(-1) ?? track.pickup;
        if (!courier) return [];
        return [{ ...project(courier), text: `${track.orderId.slice(-6)} ${track.status}` }];
      });
      const labels = placeLabels(requests, {
        width,
        height,
        lineHeight: 14,
        measure: (text) => context.measureText(text).width,
      });
      context.fillStyle = "#e6edf3";
      for (const label of labels) context.fillText(label.text, label.x, label.y);
    },
  };
}
