// The terms that shaped a map: the API's related_terms are the weights of the expanded query (the
// recognised terms first, near 1, then the terms the model added, small, such as 0.02). Bars for a
// panel that reads both groups: each group is scaled to its own largest weight. Pure.

import type { DecodedTerm, RelatedTerm } from './types'

export interface TermBar {
  term: string
  weight: number
  /** The weight as shown: two significant digits (0.77, 0.035, 0.021). */
  label: string
  /** Whether the term was recognised in the query (rather than added by the model). */
  query: boolean
  /** Bar length, 0–1, relative to the largest weight of its group. */
  fraction: number
}

/** A weight with two significant digits, never in exponent notation for the weights seen. */
export function formatWeight(w: number): string {
  if (!Number.isFinite(w)) return '–'
  if (w === 0) return '0'
  const s = w.toPrecision(2)
  return s.includes('e') ? w.toExponential(1) : s
}

export function termBars(related: readonly RelatedTerm[] | undefined, recognized: readonly string[] | undefined): TermBar[] {
  const known = new Set((recognized ?? []).map((t) => t.toLowerCase()))
  const list = (related ?? []).filter((t) => t && typeof t.term === 'string' && t.term !== '')
  const weight = (t: RelatedTerm): number => (Number.isFinite(t.weight) ? Math.abs(t.weight) : 0)
  const top = (query: boolean): number =>
    Math.max(0, ...list.filter((t) => known.has(t.term.toLowerCase()) === query).map(weight))
  const tops = { true: top(true), false: top(false) }
  const bars = list.map((t) => {
    const query = known.has(t.term.toLowerCase())
    const max = tops[`${query}`]
    return {
      term: t.term,
      weight: Number.isFinite(t.weight) ? t.weight : 0,
      label: formatWeight(t.weight),
      query,
      fraction: max > 0 ? weight(t) / max : 0,
    }
  })
  // the query's own terms first, each group by weight (the API's order within a group)
  return [...bars.filter((b) => b.query), ...bars.filter((b) => !b.query)]
}

/**
 * Bars of a decoding's terms (the decoder's order, best first), each scaled to the best score; a
 * score at or below 0 has an empty bar.
 */
export function decodedTermBars(terms: readonly DecodedTerm[] | undefined): TermBar[] {
  const list = (terms ?? []).filter((t) => t && typeof t.term === 'string' && t.term !== '')
  const score = (t: DecodedTerm): number => (Number.isFinite(t.score) ? t.score : 0)
  const top = Math.max(0, ...list.map(score))
  return list.map((t) => ({
    term: t.term,
    weight: score(t),
    label: formatWeight(t.score),
    query: false,
    fraction: top > 0 ? Math.max(0, score(t)) / top : 0,
  }))
}
