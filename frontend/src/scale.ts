// The colour scales of the map, shared by the slice viewer and the surface: one per sign, from the
// threshold to the map's own extreme of that sign (so that each colour bar reads the map's range),
// and none for a sign that is hidden or has no voxel beyond the threshold. Pure.

export interface Display {
  threshold: number
  showPos: boolean
  showNeg: boolean
  /** The map's largest value (0 when it has no positive voxel). */
  max: number
  /** The map's smallest value (0 when it has no negative voxel). */
  min: number
}

/** One side of the scale, in |z|: colours run from lo (the threshold) to hi (the extreme). */
export interface Side {
  lo: number
  hi: number
}

export interface Scales {
  /** z from lo to hi; null when the positive side is hidden or empty. */
  pos: Side | null
  /** z from −lo to −hi; null when the negative side is hidden or empty. */
  neg: Side | null
}

/** The smallest positive threshold the viewers accept (0 would colour the whole background). */
export const MIN_THRESHOLD = 0.001

export function scalesFor(d: Display): Scales {
  const lo = Math.max(MIN_THRESHOLD, Number.isFinite(d.threshold) ? d.threshold : 0)
  const side = (shown: boolean, extreme: number): Side | null => {
    const e = Number.isFinite(extreme) ? Math.abs(extreme) : 0
    // a voxel at exactly the threshold is in a cluster (z ≥ t), so it keeps its bar
    if (!shown || e < lo) return null
    return { lo, hi: Math.max(e, lo + 0.01) }
  }
  return {
    pos: side(d.showPos, d.max > 0 ? d.max : 0),
    neg: side(d.showNeg, d.min < 0 ? d.min : 0),
  }
}

/** The slider's top: the map's largest |z| rounded up, never below the default's ceiling. */
export function sliderMax(maxAbs: number, floor = 4): number {
  const m = Number.isFinite(maxAbs) ? Math.ceil(maxAbs) : 0
  return Math.max(floor, m)
}

/** The threshold slider: its top, its step, and the value it starts at. */
export interface Slider {
  value: number
  max: number
  step: number
  /** Decimals that show one step. */
  decimals: number
}

/** The default threshold of a map of z-scores (p < 0.001, one-sided). */
export const Z_THRESHOLD = 3.1

/**
 * The slider for an uploaded map, whose values are in its own units (t, z, beta, a percentage…):
 * a step of at most 0.1 that still gives the range fifty positions or more, the top at the map's
 * largest |value| (rounded up to a step), and a start at 3.1 — a z map's usual threshold — or 30 %
 * of the largest |value| when the map does not go that high (a map of betas may top out at 0.8).
 */
export function decodingSlider(maxAbs: number): Slider {
  const m = Number.isFinite(maxAbs) && maxAbs > 0 ? maxAbs : 1
  const exp = Math.min(-1, Math.floor(Math.log10(m / 50)))
  const step = 10 ** exp
  const decimals = -exp
  const round = (x: number): number => Number(x.toFixed(decimals))
  const max = round(Math.ceil(round(m / step)) * step)
  const value = Math.max(step, round(Math.floor(round(Math.min(Z_THRESHOLD, 0.3 * m) / step)) * step))
  return { value: round(value), max: Math.max(max, round(value + step)), step: round(step), decimals }
}
