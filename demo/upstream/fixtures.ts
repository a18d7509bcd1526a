import type { LatLng } from "../../core/geo";

export interface MenuItem {
  readonly id: string;
  readonly name: string;
  readonly priceCents: number;
}

export interface Restaurant {
  readonly id: string;
  readonly name: string;
  readonly city: string;
  readonly cuisine: string;
  readonly location: LatLng;
  readonly menu: readonly MenuItem[];
}

const menu = (prefix: string, items: [string, number][]): MenuItem[] =>
  items.map(([name, priceCents], i) => ({ id: `${prefix}-m${i + 1}`, name, priceCents }));

/** The stand-in order service's restaurants: a few per demo city, near the centre. */
export const RESTAURANTS: readonly Restaurant[] = [
  {
    id: "ldn-curry",
    name: "Brick Lane Curry House",
    city: "london",
    cuisine: "indian",
    location: { lat: 51.5205, lng: -0.0717 },
    menu: menu("ldn-curry", [
      ["Chicken tikka masala", 1250],
      ["Lamb rogan josh", 1395],
      ["Garlic naan", 350],
    ]),
  },
  {
    id: "ldn-fish",
    name: "Thames Fish & Chips",
    city: "london",
    cuisine: "british",
    location: { lat: 51.5081, lng: -0.1281 },
    menu: menu("ldn-fish", [
      ["Cod and chips", 1150],
      ["Mushy peas", 300],
    ]),
  },
  {
    id: "ldn-pizza",
    name: "Soho Slice",
    city: "london",
    cuisine: "pizza",
    location: { lat: 51.5136, lng: -0.1365 },
    menu: menu("ldn-pizza", [
      ["Margherita", 1000],
      ["Diavola", 1200],
    ]),
  },
  {
    id: "par-bistro",
    name: "Bistro du Marais",
    city: "paris",
    cuisine: "french",
    location: { lat: 48.8575, lng: 2.3588 },
    menu: menu("par-bistro", [
      ["Croque monsieur", 950],
      ["Soupe à l'oignon", 850],
    ]),
  },
  {
    id: "par-falafel",
    name: "Rue des Rosiers Falafel",
    city: "paris",
    cuisine: "middle-eastern",
    location: { lat: 48.8571, lng: 2.3592 },
    menu: menu("par-falafel", [
      ["Falafel pita", 800],
      ["Houmous", 500],
    ]),
  },
  {
    id: "ber-doner",
    name: "Kreuzberg Döner",
    city: "berlin",
    cuisine: "turkish",
    location: { lat: 52.4986, lng: 13.4181 },
    menu: menu("ber-doner", [
      ["Döner kebab", 700],
      ["Ayran", 250],
    ]),
  },
  {
    id: "ber-curry",
    name: "Mitte Currywurst",
    city: "berlin",
    cuisine: "german",
    location: { lat: 52.5244, lng: 13.4105 },
    menu: menu("ber-curry", [["Currywurst mit Pommes", 650]]),
  },
];
