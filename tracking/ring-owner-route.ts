import { EdgeError } from "../core/errors/edge-error";
import { errorResponse, requestIdOf } from "../core/errors/error-response";
import type { TrackingRing } from "../core/tracking-ring/tracking-ring";
import { decodePathPart } from "./watch-request";

const OWNER_PATH = "/ring/owner/";
// A balancer that appends the client's whole path (Envoy's ext_authz does).
const APPENDED_TRACK_PATH = /^(?:tracking\/[^/]+\/)?v1\/orders\/([^/]+)\/track$/;

/**
 * `GET /ring/owner/{orderId}` (or `/ring/owner` followed by a track route's
 * path, as Envoy's ext_authz asks): the node that owns the order in this
 * node's ring, as `X-Tracking-Node` (and a JSON body for people). The shipped
 * balancer asks it before every upgrade of the public track route
 * (docker/nginx.conf, `auth_request`) and proxies to the node it names, so
 * routing follows the ring (liveness from heartbeats), not the balancer's
 * own view. It costs no token check (the node that takes the upgrade checks
 * everything) and no Redis call, except the tick's read when the lookup
 * comes before this ring's timer (late on a loaded host): an answer from
 * the last tick could name a node that has just left. Any order id gets an answer (the owner
 * then refuses a bad one in the error shape); 503 while the ring is empty.
 * Not for the public edge: the balancer exposes only its own internal use.
 */
export function createRingOwnerRoute(ring: TrackingRing) {
  return async function ringOwner(request: Request): Promise<Response | undefined> {
    if (request.method !== "GET") return undefined;
    const { pathname } = new URL(request.url);
    if (!pathname.startsWith(OWNER_PATH)) return undefined;
    const rest = pathname.slice(OWNER_PATH.length);
    const raw = APPENDED_TRACK_PATH.exec(rest)?.[1] ?? rest;
    const orderId = decodePathPart(raw) ?? raw;
    const owner = await ring.currentOwnerOf(orderId);
    if (!owner)
      return errorResponse(
        new EdgeError("unavailable", "no tracking node is in the ring"),
        requestIdOf(request),
      );
    return Response.json(
      { orderId, node: owner.id, url: owner.url },
      { headers: { "x-tracking-node": owner.id } },
    );
  };
}
