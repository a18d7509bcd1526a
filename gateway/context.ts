import type { Logger } from "pino";
import type { Identity } from "../core/auth/identity";
import type { ErrorCode } from "../core/errors/error-codes";

/** The typed variables middleware sets on each request's context. */
export interface GatewayEnv {
  Variables: {
    requestId: string;
    /** The root logger; `requestLogger(c)` gives one carrying the request id. */
    logger: Logger;
    identity: Identity;
    /**
     * Settles once the rate limit has counted a read-ahead request (rejects
     * with 429 when over the limit); unset for other requests, which are
     * counted before their route runs.
     */
    admitted: Promise<void>;
    /** Set with every error answer: the code its body carries, for the access log line. */
    errorCode: ErrorCode;
  };
}
