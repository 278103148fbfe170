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
