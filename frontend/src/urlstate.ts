// The query lives in the page's URL as ?q=, a decoding of an uploaded map as ?decoding=ID (share
// links, reload, back and forward); the page shows one or the other. A model other than the
// default is &model=ID, and the comparison of two models &compare=1. Pure.

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

/** The model parameter, trimmed ("" when absent: the default model). */
export function readModel(searchOrUrl: string): string {
  return (params(searchOrUrl).get('model') ?? '').trim()
}

/** Whether the URL asks for the comparison of two models (compare=1). */
export function readCompare(searchOrUrl: string): boolean {
  const v = params(searchOrUrl).get('compare')
  return v !== null && v !== '0' && v !== 'false'
}

/**
 * The search string with the model (model=ID) and the comparison (compare=1), keeping the other
 * parameters; the default model (model "" or defaultId) and no comparison are absent, so that a
 * link without them stays the same link.
 */
export function searchWithModel(current: string, model: string, opts: { defaultId?: string; compare?: boolean } = {}): string {
  const p = new URLSearchParams(current.startsWith('?') ? current.slice(1) : current)
  if (model && model !== opts.defaultId) p.set('model', model)
  else p.delete('model')
  if (opts.compare !== undefined) {
    if (opts.compare) p.set('compare', '1')
    else p.delete('compare')
  }
  const s = p.toString()
  return s ? '?' + s : ''
}

/** The share link of a decoding: origin + path + ?decoding=ID */
export function shareDecodingUrl(origin: string, pathname: string, id: string): string {
  return origin + (pathname || '/') + searchWithDecoding('', id)
}

/**
 * The share link: origin + path + ?q=…, with &model=ID for a model other than the default
 * (model "" is the default) and &compare=1 for a comparison.
 */
export function shareUrl(origin: string, pathname: string, q: string, model = '', compare = false): string {
  return origin + (pathname || '/') + searchWithModel(searchWithQuery('', q), model, { compare })
}

/** The query string encoding the API uses in examples (spaces as +). */
export function encodeQueryParam(q: string): string {
  return new URLSearchParams({ q }).toString().slice(2)
}
