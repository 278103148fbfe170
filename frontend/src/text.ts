// Lengths and shortening of texts as people and the server count them: Unicode code points, not
// the UTF-16 units of String.length (an emoji is one character, not two). Pure.

/** Characters (code points) of s. */
export function codePoints(s: string): number {
  let n = 0
  for (const _ of s) n++
  return n
}

/** At most max code points of s: its beginning, trimmed, and "…" when it was longer. */
export function ellipsize(s: string, max: number): string {
  const cps = Array.from(s)
  if (cps.length <= max) return s
  return cps.slice(0, Math.max(1, max - 1)).join('').trimEnd() + '…'
}

/** The server's byte bound on a raw query (querytext.MaxRawBytes). */
export const MAX_QUERY_BYTES = 16 << 10

/**
 * The text the way the server counts it (querytext.Normalize): control characters other than white
 * space removed, lower case and NFKC until stable, runs of white space collapsed, trimmed.
 */
export function normalizeQuery(text: string): string {
  let t = text.replace(/(?![\t\n\v\f\r])\p{Cc}/gu, '')
  for (let i = 0; i < 3; i++) {
    const next = t.toLowerCase().normalize('NFKC')
    if (next === t) break
    t = next
  }
  return t.split(/\s+/u).filter(Boolean).join(' ')
}

/**
 * The length of a query as the server checks it against its limit: code points of the normalised
 * text; a text beyond the server's byte bound counts as at least limit + 1.
 */
export function queryLength(text: string, limit: number): number {
  const n = codePoints(normalizeQuery(text))
  if (new TextEncoder().encode(text).length > MAX_QUERY_BYTES) return Math.max(n, limit + 1)
  return n
}

/** The page title for a query: at most 60 characters of it, then the site's name. */
export function documentTitle(q: string, max = 60): string {
  const t = q.replace(/\s+/g, ' ').trim()
  return t ? `${ellipsize(t, max)} — text2brain` : 'text2brain — a search engine for brain maps'
}

/**
 * A server message with every quoted passage ("…", Go's %q quoting) longer than max characters
 * shortened to its beginning: the message stays a readable sentence however long the query.
 */
export function shortenQuoted(message: string, max = 60): string {
  return message.replace(/"((?:[^"\\]|\\.)*)"/g, (whole, inner: string) =>
    codePoints(inner) > max ? `"${ellipsize(inner, max)}"` : whole,
  )
}
