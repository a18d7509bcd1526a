// Small helpers the page's views share.

const NODE_COLORS = ["#e4572e", "#17bebb", "#a66cff", "#ffc914", "#76b041", "#ff6f91"];
const nodeColors = new Map<string, string>();

export function $<T extends HTMLElement = HTMLElement>(selector: string): T {
  const element = document.querySelector<T>(selector);
  if (!element) throw new Error(`the page lacks ${selector}`);
  return element;
}

export function showNotice(text: string): void {
  const notice = $("#notice");
  notice.textContent = text;
  notice.hidden = text === "";
}

/** What a person can do about a refused call (the server's message, then the way out). */
export function explainRefusal(what: string, status: number, message: string | undefined): string {
  const hint =
    status === 401
      ? "The token is invalid or expired: mint a new one with `./edge token` (or reopen the demo's link)."
      : status === 403
        ? what === "live view"
          ? "The city map needs an ops or dispatcher token; a customer's token shows one order: add &order=<id> to the link."
          : "This token may not see this order."
        : status === 404
          ? "No such order (an ended order's record expires after a while)."
          : "";
  return `${what}: ${status} ${message ?? ""} ${hint}`.trim();
}

/** A stable colour per tracking node, so an order's colour says which node serves it. */
export function colorOf(nodeId: string | undefined): string {
  if (!nodeId) return "#888";
  let color = nodeColors.get(nodeId);
  if (!color) {
    color = NODE_COLORS[nodeColors.size % NODE_COLORS.length] ?? "#888";
    nodeColors.set(nodeId, color);
  }
  return color;
}

/** The role claim of a JWT, read without verifying (only to choose what to show; the server decides). */
export function roleOf(token: string): string | undefined {
  try {
    const payload = token.split(".")[1] ?? "";
    const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
    const role = (JSON.parse(json) as { role?: unknown }).role;
    return typeof role === "string" ? role : undefined;
  } catch {
    return undefined;
  }
}
