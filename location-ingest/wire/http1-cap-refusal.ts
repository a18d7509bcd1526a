import type { Socket } from "bun";
import { EdgeError } from "../../core/errors/edge-error";
import { errorBody } from "../../core/errors/error-response";

/**
 * A refused connection's linger: after its answer and FIN, what the client
 * still sends (its request, arriving after the answer) is read and dropped
 * for up to this long and this many bytes, then the socket is closed.
 * Closed at once, the request arriving after would make the kernel reset the
 * connection, and a client can lose the unread answer with the reset.
 */
const REFUSAL_LINGER_MS = 1_000;
const REFUSAL_LINGER_BYTES = 64 * 1024;
/** Refused connections lingering at once (a descriptor each); past this, closed at once. */
const MAX_LINGERING = 64;
/**
 * What a connection the cap refused is told before it is closed: 503
 * `unavailable` with Retry-After (1 s), in the edge's JSON error shape, so an
 * HTTP client sees why and when to come back rather than a reset. Written
 * at once: the front does not wait for the request (it reads and drops it).
 */
function refusalAnswer(): Buffer {
  const requestId = crypto.randomUUID();
  const error = new EdgeError(
    "unavailable",
    "every connection of this port is answering a request: try again shortly",
  );
  const body = JSON.stringify(errorBody(error, requestId));
  return Buffer.from(
    "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n" +
      `retry-after: ${error.retryAfterSeconds}\r\nx-request-id: ${requestId}\r\n` +
      `connection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/** A socket the HTTP/1.1 front accepted (a refused one carries no connection). */
type Client = Socket<unknown>;

/**
 * The HTTP/1.1 cap's refusals: each refused connection gets its answer and
 * a FIN at once, then lingers (REFUSAL_LINGER_MS, REFUSAL_LINGER_BYTES) so
 * that a request arriving after the answer is read and dropped rather than
 * reset. Wired to the front's socket handlers for sockets without a connection.
 */
export function createCapRefusals() {
  /** Refused connections in their linger: bytes dropped, and the timer that cuts them. */
  const lingering = new Map<Client, { bytes: number; timer: Timer }>();
  return {
    refuse(client: Client): void {
      const answer = refusalAnswer();
      const written = client.write(answer);
      if (written < answer.length || lingering.size >= MAX_LINGERING) {
        // Bun's end() closes the socket outright once written: no descriptor stays behind.
        client.end();
        return;
      }
      client.shutdown();
      const timer = setTimeout(() => client.terminate(), REFUSAL_LINGER_MS);
      lingering.set(client, { bytes: 0, timer });
    },
    /** A refused client's bytes, dropped; past REFUSAL_LINGER_BYTES it is cut. */
    drop(client: Client, chunk: Buffer): void {
      const linger = lingering.get(client);
      if (!linger) return;
      linger.bytes += chunk.length;
      if (linger.bytes > REFUSAL_LINGER_BYTES) client.terminate();
    },
    /** The client is done sending: it had its answer and FIN, so the socket closes gracefully. */
    ended(client: Client): void {
      client.end();
    },
    closed(client: Client): void {
      clearTimeout(lingering.get(client)?.timer);
      lingering.delete(client);
    },
    cutAll(): void {
      for (const client of lingering.keys()) client.terminate();
    },
  };
}
