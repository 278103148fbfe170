// The query lives in the page's URL as ?q= (share links, reload, back and forward). Pure.

/** The q parameter of a search string or URL ("" when absent); + and %20 both mean a space. */
export function readQuery(searchOrUrl: string): string {
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
    return new URLSearchParams(search).get('q') ?? ''
  } catch {
    return ''
  }
}

/** The search string for q ("?q=working+memory"), keeping the other parameters of current. */
export function searchWithQuery(current: string, q: string): string {
  const params = new URLSearchParams(current.startsWith('?') ? current.slice(1) : current)
  if (q) {
    params.set('q', q)
  } else {
    params.delete('q')
  }
  const s = params.toString()
  return s ? '?' + s : ''
}

/** The share link: origin + path + ?q=… */
export function shareUrl(origin: string, pathname: string, q: string): string {
  return origin + (pathname || '/') + searchWithQuery('', q)
}

/** The query string encoding the API uses in examples (spaces as +). */
export function encodeQueryParam(q: string): string {
  return new URLSearchParams({ q }).toString().slice(2)
}
