/** One accepted ping on its way to an external location log. */
export interface LocationEntry {
  readonly riderId: string;
  readonly city: string;
  readonly recordedAtMs: number;
  /** Protobuf-encoded LocationRecord. */
  readonly record: Uint8Array;
}

/** A location log outside Redis (Kafka): fed without ever blocking the Redis path. */
export interface ExternalLocationLog {
  append(entry: LocationEntry): void;
  /** Sends records at once (the replay), resolving when the log acknowledged them. */
  produce(entries: readonly LocationEntry[]): Promise<void>;
  /** Sends what is buffered (for a bounded wait), spills the rest, and disconnects. */
  close(): Promise<void>;
}

/**
 * Where the history of accepted pings goes: Kafka `rider-locations`, or
 * without Kafka a capped Redis stream per city, written by the same script
 * call that records the city's positions (no extra round trip).
 */
export type LocationLog =
  | { readonly kind: "redis-stream"; readonly maxLen: number }
  | { readonly kind: "external"; readonly sink: ExternalLocationLog };
