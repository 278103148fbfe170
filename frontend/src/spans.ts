// Recognised-term spans → text segments for highlighting. The API's offsets count Unicode code
// points (not UTF-16 units) into the query exactly as sent; end is exclusive.

export interface Span {
  start: number
  end: number
  term: string
}

export interface Segment {
  text: string
  /** The recognised term when this segment is highlighted. */
  term?: string
}

/**
 * Splits text into plain and highlighted segments. Spans that are malformed, out of range or that
 * overlap an earlier one are ignored. Concatenating the segments' text gives text back.
 */
export function segmentsFromSpans(text: string, spans: readonly Span[] | null | undefined): Segment[] {
  const cps = Array.from(text) // code points
  const n = cps.length
  const valid = (spans ?? [])
    .filter(
      (s) =>
        s != null &&
        Number.isInteger(s.start) &&
        Number.isInteger(s.end) &&
        s.start >= 0 &&
        s.end <= n &&
        s.start < s.end,
    )
    .slice()
    .sort((a, b) => a.start - b.start || b.end - a.end)
  const out: Segment[] = []
  let pos = 0
  for (const s of valid) {
    if (s.start < pos) {
      continue // overlaps the previous span
    }
    if (s.start > pos) {
      out.push({ text: cps.slice(pos, s.start).join('') })
    }
    out.push({ text: cps.slice(s.start, s.end).join(''), term: typeof s.term === 'string' && s.term ? s.term : cps.slice(s.start, s.end).join('') })
    pos = s.end
  }
  if (pos < n || out.length === 0) {
    out.push({ text: cps.slice(pos).join('') })
  }
  return out.filter((s, i) => s.text.length > 0 || (i === 0 && out.length === 1))
}

/** Number of code points in text (what the API's offsets count). */
export function codePointLength(text: string): number {
  return Array.from(text).length
}

/**
 * While the visitor types, keeps the spans that lie wholly inside the unchanged beginning of the
 * text (so that highlights do not flicker until the next answer), and drops the others.
 */
export function retainSpans(oldText: string, newText: string, spans: readonly Span[]): Span[] {
  const a = Array.from(oldText)
  const b = Array.from(newText)
  let common = 0
  while (common < a.length && common < b.length && a[common] === b[common]) common++
  // a term followed directly by a new letter is no longer the same word
  const boundary = (i: number): boolean => i >= b.length || !/[\p{L}\p{N}]/u.test(b[i])
  return spans.filter((s) => s.end <= common && (s.end < common || boundary(s.end)))
}
