import type { Logger } from "pino";
import type { Identity } from "../core/auth/identity";

/** The typed variables middleware sets on each request's context. */
export interface GatewayEnv {
  Variables: {
    requestId: string;
    logger: Logger;
    identity: Identity;
  };
}
