/**
 * A rider's last accepted position, stored as one compact JSON string at
 * `rider:{r}:pos` (one SET ... EX per ping is cheaper than a many-field HSET
 * plus EXPIRE on the hot path). The ingest writes it; the tracking tier and
 * dispatch read it.
 */
export interface RiderPosition {
  readonly lat: number;
  readonly lng: number;
  /** The ping's seq, as a decimal string (uint64). */
  readonly seq: string;
  readonly recordedAt: number;
  readonly receivedAt: number;
  readonly heading: number;
  readonly speed: number;
  readonly accuracy: number;
  readonly city: string;
}

/** How long a last position outlives the rider's last ping. */
export const RIDER_POSITION_TTL_S = 86_400;

export function encodeRiderPosition(position: RiderPosition): string {
  return JSON.stringify(position);
}

/** Parses a stored position; undefined when absent or damaged. */
export function parseRiderPosition(raw: string | null): RiderPosition | undefined {
  if (!raw) return undefined;
  let value: Partial<RiderPosition>;
  try {
    value = JSON.parse(raw) as Partial<RiderPosition>;
  } catch {
    return undefined;
  }
  const numbers = [
    value.lat,
    value.lng,
    value.recordedAt,
    value.receivedAt,
    value.heading,
    value.speed,
    value.accuracy,
  ];
  if (!numbers.every((n) => typeof n === "number" && Number.isFinite(n))) return undefined;
  if (typeof value.seq !== "string" || !/^\d+$/.test(value.seq) || typeof value.city !== "string")
    return undefined;
  return value as RiderPosition;
}
