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
    /** Set with every error answer: the code its body carries, for the access log line. */
    errorCode: ErrorCode;
  };
}
