import { ConnectError } from "@connectrpc/connect";
import { EdgeError } from "../core/errors/edge-error";

/** Translates anything thrown inside the ingest into the ConnectError a client sees. */
export function toConnectError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  return EdgeError.from(error).toConnectError();
}
