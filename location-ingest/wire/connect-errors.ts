import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { EdgeError } from "../../core/errors/edge-error";

/**
 * The one translation of an error into what a client sees: an EdgeError
 * (or anything thrown) becomes the ConnectError of its code
 * (core/errors/error-codes.ts). It runs in three places, each on errors
 * the others never see: the interceptor below (connect-node's handlers),
 * the lean gRPC path's one catch, and the message guard (request bytes
 * connect-node reads before any handler runs).
 */
export function toConnectError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  return EdgeError.from(error).toConnectError();
}

/**
 * For connect-node's router: whatever a handler throws, at the call or
 * while its response stream runs, reaches the client through
 * toConnectError (connect-node would otherwise answer Internal or Unknown).
 */
export const translateErrors: Interceptor = (next) => async (request) => {
  try {
    const response = await next(request);
    if (!response.stream) return response;
    return { ...response, message: translated(response.message) };
  } catch (error) {
    throw toConnectError(error);
  }
};

async function* translated<T>(messages: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    yield* messages;
  } catch (error) {
    throw toConnectError(error);
  }
}
