// Label placement for the canvas: each label tries four spots around its
// point and is left out when none is free, so labels never pile up on a
// busy restaurant. Pure (the text width comes in), so it is tested alone.

export interface LabelRequest {
  x: number;
  y: number;
  text: string;
}

export interface PlacedLabel {
  text: string;
  /** Where fillText draws (left, baseline). */
  x: number;
  y: number;
  box: Box;
}

interface Box {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

const GAP = 8;

function overlaps(a: Box, b: Box): boolean {
  return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}

/**
 * Places labels in the order given (put the important ones first) inside a
 * `width`×`height` area, none overlapping another or a `keepClear` box.
 */
export function placeLabels(
  requests: readonly LabelRequest[],
  options: {
    width: number;
    height: number;
    lineHeight: number;
    measure: (text: string) => number;
    keepClear?: readonly Box[];
  },
): PlacedLabel[] {
  const { width, height, lineHeight, measure, keepClear = [] } = options;
  const taken: Box[] = [...keepClear];
  const placed: PlacedLabel[] = [];
  for (const { x, y, text } of requests) {
    const textWidth = measure(text);
    // Right-above, right-below, left-above, left-below of the point.
    const spots = [
      { left: x + GAP, top: y - GAP - lineHeight },
      { left: x + GAP, top: y + GAP },
      { left: x - GAP - textWidth, top: y - GAP - lineHeight },
      { left: x - GAP - textWidth, top: y + GAP },
    ];
    for (const { left, top } of spots) {
      const box = { left, top, right: left + textWidth, bottom: top + lineHeight };
      if (box.left < 0 || box.top < 0 || box.right > width || box.bottom > height) continue;
      if (taken.some((other) => overlaps(box, other))) continue;
      taken.push(box);
      // Baseline a little above the box's bottom, for descenders.
      placed.push({ text, x: left, y: box.bottom - lineHeight * 0.25, box });
      break;
    }
  }
  return placed;
}
