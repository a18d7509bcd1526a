// The live map's page script, bundled by the gateway at start-up
// (live-map-routes.ts). The link's fragment says what to show:
//   #token=<ops or dispatcher JWT>[&city=<id>]   the city's riders and followed orders
//   #token=<any JWT that may see it>&order=<id>  one order as its customer sees it
//   nothing                                      how to get a link
import { startMapView } from "./map-view";
import { startOrderView } from "./order-view";
import { $, showNotice } from "./page";

const params = new URLSearchParams(location.hash.slice(1));
const token = params.get("token") ?? "";
const orderId = params.get("order") ?? "";
const city = params.get("city") ?? undefined;

// Every view is set up from the fragment: a new fragment is a new page.
addEventListener("hashchange", () => location.reload());

if (!token) {
  document.body.classList.add("welcome");
  $("#welcome").hidden = false;
  $<HTMLFormElement>("#token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = new FormData(event.target as HTMLFormElement);
    const fields = new URLSearchParams({ token: String(form.get("token") ?? "").trim() });
    const order = String(form.get("order") ?? "").trim();
    if (order) fields.set("order", order);
    location.hash = fields.toString();
  });
} else if (orderId) {
  startOrderView(token, orderId, city).catch((error: unknown) =>
    showNotice(`order view: ${String(error)}`),
  );
} else {
  startMapView(token, city);
}
