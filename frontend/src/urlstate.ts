// The query lives in the page's URL as ?q=, a decoding of an uploaded map as ?decoding=ID (share
// links, reload, back and forward); the page shows one or the other. Pure.

function params(searchOrUrl: string): URLSearchParams {
  let search = searchOrUrl
  const qm = searchOrUrl.indexOf('?')
  if (qm >= 0) {
    search = searchOrUrl.slice(qm + 1)
  }
  const hash = search.indexOf('#')
  if (hash >= 0) {
    search = search.slice(0, hash)
  }
  try {
    return new URLSearchParams(search)
  } catch {
    return new URLSearchParams()
  }
}

/** The q parameter of a search string or URL ("" when absent); + and %20 both mean a space. */
export function readQuery(searchOrUrl: string): string {
  return params(searchOrUrl).get('q') ?? ''
}

/**
 * The decoding parameter, trimmed and in lower case ("" when absent). It is not checked here: a
 * link with a malformed id gets a message ("not found"), not the default map in silence.
 */
export function readDecoding(searchOrUrl: string): string {
  return (params(searchOrUrl).get('decoding') ?? '').trim().toLowerCase()
}

/**
 * The search string for q ("?q=working+memory"), keeping the other parameters of current but a
 * decoding (the page shows the query's map instead).
 */
export function searchWithQuery(current: string, q: string): string {
  const p = new URLSearchParams(current.startsWith('?') ? current.slice(1) : current)
  p.delete('decoding')
  if (q) {
    p.set('q', q)
  } else {
    p.delete('q')
  }
  const s = p.toString()
  return s ? '?' + s : ''
}

/** The search string for a decoding ("?decoding=ID"), keeping the other parameters but q. */
export function searchWithDecoding(current: string, id: string): string {
  const p = new URLSearchParams(current.startsWith('?') ? current.slice(1) : current)
  p.delete('q')
  p.set('decoding', id)
  return '?' + p.toString()
}

/** The share link of a decoding: origin + path + ?decoding=ID */
export function shareDecodingUrl(origin: string, pathname: string, id: string): string {
  return origin + (pathname || '/') + searchWithDecoding('', id)
}

/** The share link: origin + path + ?q=… */
export function shareUrl(origin: string, pathname: string, q: string): string {
  return origin + (pathname || '/') + searchWithQuery('', q)
}

/** The query string encoding the API uses in examples (spaces as +). */
export function encodeQueryParam(q: string): string {
  return new URLSearchParams({ q }).toString().slice(2)
}
