// Number and coordinate formatting for the page (typographic minus, rounded mm). Pure.

export const MINUS = '\u2212'

/** A signed number with a typographic minus; −0 prints as 0. */
export function signed(n: number, decimals = 0): string {
  if (!Number.isFinite(n)) return '–'
  const s = n.toFixed(decimals)
  if (/^-0(\.0*)?$/.test(s)) return s.slice(1)
  return s.startsWith('-') ? MINUS + s.slice(1) : s
}

/** "x −42, y 20, z 24 mm" */
export function formatMM(mm: ArrayLike<number>): string {
  return `x ${signed(Math.round(mm[0]))}, y ${signed(Math.round(mm[1]))}, z ${signed(Math.round(mm[2]))} mm`
}

/**
 * "x −42, y 20, z 24 mm · z-score 5.31" (the coordinate z and the map's value are not confused);
 * an uploaded map's values are in its own units: "· value 5.31".
 */
export function formatReadout(mm: ArrayLike<number>, z: number, label = 'z-score'): string {
  return `${formatMM(mm)} · ${label} ${signed(z, 2)}`
}

export function formatInt(n: number): string {
  return Math.round(n).toLocaleString('en-US')
}

/** Seconds elapsed since a start time in ms, for the progress line. */
export function elapsedSeconds(startMs: number, nowMs: number): number {
  return Math.max(0, Math.floor((nowMs - startMs) / 1000))
}
