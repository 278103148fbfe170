// The API client: JSON requests with time limits, error decoding, the map request with its
// polling (202 → poll until done, 60 s at most), and the upload of a map to decode (with its upload
// progress, then the same polling). Fetch, the clock, sleep and the upload's transport are
// injectable so the tests drive it with fakes.

import type { ErrorInfo } from './messages'
import { GIVE_UP_SECONDS } from './messages'
import { parseModels, type Models } from './models'
import type { Decoding, MapResult, Pending, PendingDecoding, SurfaceValues, TermsAnswer, VersionInfo } from './types'

export class ApiError extends Error implements ErrorInfo {
  code: string
  status: number
  retryAfter?: number
  constructor(code: string, status: number, message?: string, retryAfter?: number) {
    super(message ?? code)
    this.name = 'ApiError'
    this.code = code
    this.status = status
    this.retryAfter = retryAfter
  }
  /** The server's sentence (empty for client-side errors). */
  get serverMessage(): string {
    return this.message === this.code ? '' : this.message
  }
  toInfo(): ErrorInfo {
    return { code: this.code, status: this.status, message: this.serverMessage, retryAfter: this.retryAfter }
  }
}

export interface Deps {
  fetch: (input: string, init?: RequestInit) => Promise<Response>
  now: () => number
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>
}

export function abortError(): DOMException {
  return new DOMException('The operation was aborted.', 'AbortError')
}

export function isAbort(e: unknown): boolean {
  return e instanceof DOMException ? e.name === 'AbortError' : (e as { name?: string } | null)?.name === 'AbortError'
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError())
      return
    }
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, Math.max(0, ms))
    const onAbort = (): void => {
      clearTimeout(t)
      reject(abortError())
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

export const defaultDeps: Deps = {
  fetch: (input, init) => fetch(input, init),
  now: () => Date.now(),
  sleep,
}

/** Retry-After in seconds (delta-seconds or an HTTP date), undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, nowMs = Date.now()): number | undefined {
  if (value == null || value.trim() === '') return undefined
  const v = value.trim()
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v)
  const t = Date.parse(v)
  if (Number.isFinite(t)) return Math.max(0, (t - nowMs) / 1000)
  return undefined
}

export interface JSONResponse {
  status: number
  headers: Headers
  body: unknown
}

/**
 * One request with a time limit. Errors: ApiError (code from the API's JSON, or 'network',
 * 'timeout', 'http', 'bad_response'); an AbortError when signal aborts.
 */
export async function requestJSON(
  url: string,
  init: RequestInit,
  opts: { deps?: Deps; signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<JSONResponse> {
  const deps = opts.deps ?? defaultDeps
  const outer = opts.signal
  if (outer?.aborted) throw abortError()
  const ctrl = new AbortController()
  let timedOut = false
  const onAbort = (): void => ctrl.abort()
  outer?.addEventListener('abort', onAbort, { once: true })
  const timer =
    opts.timeoutMs !== undefined
      ? setTimeout(() => {
          timedOut = true
          ctrl.abort()
        }, Math.max(0, opts.timeoutMs))
      : undefined
  let resp: Response
  let text: string
  try {
    resp = await deps.fetch(url, { ...init, signal: ctrl.signal, headers: { Accept: 'application/json', ...(init.headers ?? {}) } })
    text = await resp.text()
  } catch (e) {
    if (outer?.aborted) throw abortError()
    if (timedOut) throw new ApiError('timeout', 0)
    if (isAbort(e)) throw abortError()
    throw new ApiError('network', 0)
  } finally {
    if (timer !== undefined) clearTimeout(timer)
    outer?.removeEventListener('abort', onAbort)
  }
  let body: unknown = undefined
  let parsed = false
  if (text.length > 0) {
    try {
      body = JSON.parse(text)
      parsed = true
    } catch {
      parsed = false
    }
  }
  if (resp.status < 200 || resp.status > 299) {
    const err = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error
    const retryAfter = parseRetryAfter(resp.headers.get('Retry-After'), deps.now())
    if (parsed && err && typeof err.code === 'string') {
      throw new ApiError(err.code, resp.status, typeof err.message === 'string' ? err.message : undefined, retryAfter)
    }
    const code = resp.status === 429 ? 'rate_limited' : resp.status === 503 ? 'unavailable' : 'http'
    throw new ApiError(code, resp.status, undefined, retryAfter)
  }
  if (!parsed && resp.status !== 204) {
    throw new ApiError('bad_response', resp.status)
  }
  return { status: resp.status, headers: resp.headers, body }
}

export interface MapProgress {
  stage: string
  pending?: Pending | PendingDecoding
}

export interface FetchMapOptions {
  signal?: AbortSignal
  deps?: Deps
  onProgress?: (p: MapProgress) => void
  /** Total time before giving up (ms). */
  giveUpMs?: number
  /**
   * wait= of the first request (s): long enough that a new map usually comes back in that one
   * round trip, short enough that a slow one reports its stage (queued, computing) within a second.
   */
  firstWait?: number
  /** wait= of each poll (s): the stage shown is never older than this. */
  pollWait?: number
  /** The model's id (/api/v1/models); absent or "" for the default model (no model= then). */
  model?: string
}

function isResult(b: unknown): b is MapResult {
  const r = b as MapResult | null
  return !!r && typeof r === 'object' && r.status === 'done' && typeof r.id === 'string' && typeof r.map_url === 'string'
}

function isDecoding(b: unknown): b is Decoding {
  // a decoding has the same fields as a map result that the page needs (id, map_url)
  return isResult(b)
}

function isPending(b: unknown): b is Pending {
  const p = b as Pending | null
  return !!p && typeof p === 'object' && p.status === 'pending'
}

const ID_RE = /^[0-9a-f]{32}$/

/** A poll URL from the API, kept only when it is a same-origin path; else base + id. */
export function safePollPath(poll: unknown, id: unknown, base = '/api/v1/maps/'): string {
  if (typeof poll === 'string' && /^\/[^/\\]/.test(poll)) return poll
  if (typeof id === 'string' && ID_RE.test(id)) return base + id
  throw new ApiError('bad_response', 202)
}

export function withParam(path: string, key: string, value: string | number): string {
  return path + (path.includes('?') ? '&' : '?') + `${key}=${encodeURIComponent(String(value))}`
}

/**
 * The first request (made by first, given the time left) and, while the answer is pending, polls
 * of its `poll` (long polls of pollWait seconds, Retry-After between quick answers) until isDone;
 * ApiError('timeout') after giveUpMs. With clockAfterFirst, the time limit starts once the first
 * request has answered: an upload takes as long as the connection needs, and only the computing
 * after it is bounded.
 */
async function untilDone<T>(
  first: (remainingMs: number) => Promise<JSONResponse>,
  isDone: (b: unknown) => b is T,
  base: string,
  opts: FetchMapOptions,
  clockAfterFirst = false,
): Promise<T> {
  const deps = opts.deps ?? defaultDeps
  const giveUpMs = opts.giveUpMs ?? GIVE_UP_SECONDS * 1000
  const pollWait = opts.pollWait ?? 2
  let deadline = deps.now() + giveUpMs
  let url = ''
  for (let n = 0; ; n++) {
    const remaining = deadline - deps.now()
    if (remaining <= 0) throw new ApiError('timeout', 0)
    const sent = deps.now()
    let resp: JSONResponse
    if (n === 0) {
      resp = await first(remaining)
      if (clockAfterFirst) deadline = deps.now() + giveUpMs
    } else {
      const wait = Math.max(0, Math.min(pollWait, Math.floor(remaining / 1000)))
      resp = await requestJSON(withParam(url, 'wait', wait), { method: 'GET' }, { deps, signal: opts.signal, timeoutMs: remaining })
    }
    if (isDone(resp.body)) {
      return resp.body
    }
    if (resp.status === 202 || isPending(resp.body)) {
      const pending = resp.body as Pending
      opts.onProgress?.({ stage: typeof pending?.stage === 'string' ? pending.stage : 'queued', pending })
      url = safePollPath(pending?.poll, pending?.id, base)
      const retryS = parseRetryAfter(resp.headers.get('Retry-After'), deps.now()) ?? 1
      const retryMs = Math.min(5000, Math.max(250, retryS * 1000))
      const took = deps.now() - sent
      const pause = Math.min(retryMs - took, deadline - deps.now())
      if (pause > 0) {
        await deps.sleep(pause, opts.signal)
      }
      continue
    }
    throw new ApiError('bad_response', resp.status)
  }
}

/**
 * The first request of a map: /api/v1/maps?q=…&wait=…, with &model=ID for a model other than the
 * default (the default's request names none, so it is the same URL, and cache entry, as before
 * there were several models). The polls that follow need no model: a map's id is its model's.
 */
export function mapsQueryUrl(q: string, wait: number, model?: string): string {
  const url = `/api/v1/maps?q=${encodeURIComponent(q)}&wait=${wait}`
  return model ? withParam(url, 'model', model) : url
}

/**
 * Asks for the map of q: 200 → the result; 202 → polls `poll` (long polls of pollWait seconds,
 * Retry-After between quick answers) until done; gives up with ApiError('timeout') after giveUpMs.
 */
export async function fetchMap(q: string, opts: FetchMapOptions = {}): Promise<MapResult> {
  const deps = opts.deps ?? defaultDeps
  const url = mapsQueryUrl(q, opts.firstWait ?? 1, opts.model)
  return untilDone((remaining) => requestJSON(url, { method: 'GET' }, { deps, signal: opts.signal, timeoutMs: remaining }), isResult, '/api/v1/maps/', opts)
}

// ---------------------------------------------------------------- decodings

/** Sends a request with its body, reporting how much of the body has gone (loaded, total bytes). */
export type UploadFetch = (url: string, init: RequestInit, onProgress: (loaded: number, total: number) => void) => Promise<Response>

export interface UploadProgress extends MapProgress {
  /** While uploading: bytes sent and the total (0 when the browser does not say). */
  loaded?: number
  total?: number
}

export interface UploadDecodingOptions extends Omit<FetchMapOptions, 'onProgress'> {
  onProgress?: (p: UploadProgress) => void
  /** The transport of the upload (the browser's XMLHttpRequest, for its upload progress). */
  upload?: UploadFetch
  /** Time limit of the upload itself (ms): a large file on a slow line takes minutes. */
  uploadTimeoutMs?: number
}

/** The response headers of an XMLHttpRequest (getAllResponseHeaders) as Headers. */
export function parseHeaderLines(raw: string): Headers {
  const headers = new Headers()
  for (const line of raw.split(/\r?\n/)) {
    const i = line.indexOf(':')
    if (i <= 0) continue
    try {
      headers.append(line.slice(0, i).trim(), line.slice(i + 1).trim())
    } catch {
      // a header name the Headers class refuses: not one the page reads
    }
  }
  return headers
}

/**
 * A fetch made with XMLHttpRequest, which fetch cannot replace here: only it reports the progress
 * of a request's body in every browser. Network failure → TypeError, abort → AbortError, as fetch.
 */
export const xhrUpload: UploadFetch = (url, init, onProgress) =>
  new Promise<Response>((resolve, reject) => {
    const signal = init.signal ?? undefined
    if (signal?.aborted) {
      reject(abortError())
      return
    }
    const xhr = new XMLHttpRequest()
    const onAbort = (): void => xhr.abort()
    const done = (): void => signal?.removeEventListener('abort', onAbort)
    xhr.open(init.method ?? 'POST', url)
    xhr.responseType = 'text'
    for (const [k, v] of Object.entries((init.headers ?? {}) as Record<string, string>)) xhr.setRequestHeader(k, v)
    xhr.upload.addEventListener('progress', (e) => onProgress(e.loaded, e.lengthComputable ? e.total : 0))
    xhr.addEventListener('load', () => {
      done()
      // statuses without a body cannot be built with one
      const empty = [204, 205, 304].includes(xhr.status)
      try {
        resolve(new Response(empty ? null : xhr.responseText, { status: xhr.status, headers: parseHeaderLines(xhr.getAllResponseHeaders()) }))
      } catch {
        reject(new TypeError(`unreadable answer (HTTP ${xhr.status})`))
      }
    })
    xhr.addEventListener('error', () => {
      done()
      reject(new TypeError('Network request failed'))
    })
    xhr.addEventListener('abort', () => {
      done()
      reject(abortError())
    })
    signal?.addEventListener('abort', onAbort, { once: true })
    xhr.send((init.body ?? null) as XMLHttpRequestBodyInit | null)
  })

/** The transport when none is given: XMLHttpRequest in a browser, plain fetch elsewhere (no progress). */
function defaultUpload(deps: Deps): UploadFetch {
  if (typeof XMLHttpRequest !== 'undefined' && deps === defaultDeps) return xhrUpload
  return (url, init) => deps.fetch(url, init)
}

/**
 * Sends a map file to decode (as a multipart form, which carries any file name in UTF-8, where a
 * header could only take Latin-1) and waits for the decoding: 200 → it; 202 → polls as for a map.
 * onProgress reports the upload ('uploading' with bytes, then 'checking' while the server reads
 * the file and holds the answer), then the API's stages. The file is checked by checkUploadFile
 * first (the caller does it, to say what is wrong before anything is sent).
 */
export async function uploadDecoding(file: Blob, name: string, opts: UploadDecodingOptions = {}): Promise<Decoding> {
  const deps = opts.deps ?? defaultDeps
  const upload = opts.upload ?? defaultUpload(deps)
  const url = `/api/v1/decodings?wait=${opts.firstWait ?? 1}`
  const form = new FormData()
  form.append('file', file, name)
  let last = -1
  const onBytes = (loaded: number, total: number): void => {
    // once every byte is sent, the server reads and checks the file before it answers
    const stage = total > 0 && loaded >= total ? 'checking' : 'uploading'
    if (stage === 'uploading' && loaded === last) return
    last = loaded
    opts.onProgress?.({ stage, loaded, total })
  }
  const send = (): Promise<JSONResponse> => {
    opts.onProgress?.({ stage: 'uploading', loaded: 0, total: file.size })
    const viaUpload: Deps = { ...deps, fetch: (u, init) => upload(u, init ?? {}, onBytes) }
    return requestJSON(url, { method: 'POST', body: form }, { deps: viaUpload, signal: opts.signal, timeoutMs: opts.uploadTimeoutMs ?? 10 * 60_000 })
  }
  return untilDone(send, isDecoding, '/api/v1/decodings/', opts, true)
}

/** A finished (or pending, then polled) decoding by its id, as a share link names it. */
export async function fetchDecoding(id: string, opts: FetchMapOptions = {}): Promise<Decoding> {
  if (!ID_RE.test(id)) throw new ApiError('not_found', 0)
  const deps = opts.deps ?? defaultDeps
  const url = `/api/v1/decodings/${id}?wait=${opts.firstWait ?? 1}`
  return untilDone((remaining) => requestJSON(url, { method: 'GET' }, { deps, signal: opts.signal, timeoutMs: remaining }), isDecoding, '/api/v1/decodings/', opts)
}

/** The terms recognised in q (for the highlighting as one types); model as for fetchMap. */
export async function fetchTerms(q: string, signal?: AbortSignal, deps?: Deps, model?: string): Promise<TermsAnswer> {
  let url = `/api/v1/terms?q=${encodeURIComponent(q)}`
  if (model) url = withParam(url, 'model', model)
  const r = await requestJSON(url, { method: 'GET' }, { deps, signal, timeoutMs: 10000 })
  const b = r.body as TermsAnswer
  return {
    query: typeof b?.query === 'string' ? b.query : q,
    normalized_query: b?.normalized_query,
    recognized_terms: Array.isArray(b?.recognized_terms) ? b.recognized_terms : [],
    unmapped_terms: Array.isArray(b?.unmapped_terms) ? b.unmapped_terms : [],
    spans: Array.isArray(b?.spans) ? b.spans : [],
  }
}

/** The models the server serves, the default first (see parseModels). */
export async function fetchModels(deps?: Deps, signal?: AbortSignal): Promise<Models> {
  const r = await requestJSON('/api/v1/models', { method: 'GET' }, { deps, signal, timeoutMs: 10000 })
  return parseModels(r.body)
}

export async function postFeedback(mapId: string, text: string, deps?: Deps): Promise<void> {
  await requestJSON(
    '/api/v1/feedback',
    { method: 'POST', body: JSON.stringify({ map_id: mapId, text }), headers: { 'Content-Type': 'application/json' } },
    { deps, timeoutMs: 15000 },
  )
}

export async function warm(deps?: Deps): Promise<unknown> {
  const r = await requestJSON('/api/v1/warm', { method: 'POST' }, { deps, timeoutMs: 15000 })
  return r.body
}

export async function fetchVersion(deps?: Deps): Promise<VersionInfo> {
  const r = await requestJSON('/api/v1/version', { method: 'GET' }, { deps, timeoutMs: 10000 })
  return (r.body ?? {}) as VersionInfo
}

export async function fetchSurface(url: string, signal?: AbortSignal, deps?: Deps): Promise<SurfaceValues> {
  const r = await requestJSON(url, { method: 'GET' }, { deps, signal, timeoutMs: 30000 })
  const b = r.body as SurfaceValues
  if (!b || !Array.isArray(b.left) || !Array.isArray(b.right)) {
    throw new ApiError('bad_response', r.status)
  }
  return b
}

/** GETs a binary file (the map) with a time limit; errors as requestJSON. */
export async function fetchBinary(url: string, signal?: AbortSignal, deps: Deps = defaultDeps, timeoutMs = 30000): Promise<ArrayBuffer> {
  if (signal?.aborted) throw abortError()
  const ctrl = new AbortController()
  let timedOut = false
  const onAbort = (): void => ctrl.abort()
  signal?.addEventListener('abort', onAbort, { once: true })
  const timer = setTimeout(() => {
    timedOut = true
    ctrl.abort()
  }, timeoutMs)
  try {
    let resp: Response
    try {
      resp = await deps.fetch(url, { signal: ctrl.signal })
    } catch (e) {
      if (signal?.aborted) throw abortError()
      if (timedOut) throw new ApiError('timeout', 0)
      if (isAbort(e)) throw abortError()
      throw new ApiError('network', 0)
    }
    if (!resp.ok) {
      let code = resp.status === 429 ? 'rate_limited' : resp.status === 503 ? 'unavailable' : 'http'
      let message: string | undefined
      try {
        const b = (await resp.json()) as { error?: { code?: string; message?: string } }
        if (b?.error?.code) {
          code = b.error.code
          message = b.error.message
        }
      } catch {
        // not JSON
      }
      throw new ApiError(code, resp.status, message, parseRetryAfter(resp.headers.get('Retry-After'), deps.now()))
    }
    try {
      return await resp.arrayBuffer()
    } catch {
      if (signal?.aborted) throw abortError()
      if (timedOut) throw new ApiError('timeout', 0)
      throw new ApiError('network', 0)
    }
  } finally {
    clearTimeout(timer)
    signal?.removeEventListener('abort', onAbort)
  }
}
