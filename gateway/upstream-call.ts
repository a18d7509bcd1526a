import { EdgeError } from "../core/errors/edge-error";

/**
 * A call to an upstream service within `timeoutMs`: 504 `upstream_timeout`
 * when it is slow, 502 `upstream_failed` when unreachable or answering 5xx.
 * Other answers are returned for the caller to read.
 */
export async function callUpstream(
  url: string,
  init: RequestInit,
  timeoutMs: number,
  name: string,
): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    if (error instanceof Error && error.name === "TimeoutError") {
      throw new EdgeError("upstream_timeout", `the ${name} did not answer in time`, {
        cause: error,
      });
    }
    throw new EdgeError("upstream_failed", `the ${name} is unreachable`, { cause: error });
  }
  if (response.status >= 500)
    throw new EdgeError("upstream_failed", `the ${name} failed (${response.status})`);
  return response;
}
