import { describe, expect, it } from 'vitest'
import { ApiError, fetchMap, fetchTerms, isAbort, parseRetryAfter, requestJSON, safePollPath, type Deps } from '../src/api'

type Reply = { status: number; body?: unknown; text?: string; headers?: Record<string, string> } | 'network'

/** A fake server: answers in order, records the URLs; the clock advances on sleep and per request. */
function fake(replies: Reply[], requestMs = 0): Deps & { urls: string[]; t: number; slept: number[] } {
  const state = {
    urls: [] as string[],
    t: 1_000_000,
    slept: [] as number[],
  }
  const deps = {
    ...state,
    fetch: async (url: string, init?: RequestInit): Promise<Response> => {
      deps.urls.push(url)
      if (init?.signal?.aborted) throw new DOMException('aborted', 'AbortError')
      const r = replies.shift()
      if (!r) throw new Error('no more replies for ' + url)
      deps.t += requestMs
      if (r === 'network') throw new TypeError('Failed to fetch')
      const text = r.text ?? (r.body === undefined ? '' : JSON.stringify(r.body))
      return new Response(text, { status: r.status, headers: r.headers })
    },
    now: () => deps.t,
    sleep: async (ms: number) => {
      deps.slept.push(ms)
      deps.t += ms
    },
  }
  return deps
}

const ID = '0123456789abcdef0123456789abcdef'
const DONE = { id: ID, query: 'working memory', status: 'done', map_url: `/api/v1/maps/${ID}/map.nii.gz` }
const PENDING = (stage: string) => ({ id: ID, status: 'pending', stage, poll: `/api/v1/maps/${ID}` })

describe('fetchMap', () => {
  it('returns a cached result at once', async () => {
    const d = fake([{ status: 200, body: DONE }])
    const r = await fetchMap('working memory', { deps: d })
    expect(r.id).toBe(ID)
    expect(d.urls).toEqual(['/api/v1/maps?q=working%20memory&wait=1'])
  })

  it('polls after 202 with the stage reported, until done', async () => {
    const d = fake(
      [
        { status: 202, body: PENDING('queued'), headers: { 'Retry-After': '1' } },
        { status: 202, body: PENDING('computing'), headers: { 'Retry-After': '1' } },
        { status: 200, body: DONE },
      ],
      100,
    )
    const stages: string[] = []
    const r = await fetchMap('x', { deps: d, onProgress: (p) => stages.push(p.stage) })
    expect(r.status).toBe('done')
    expect(stages).toEqual(['queued', 'computing'])
    expect(d.urls[1]).toBe(`/api/v1/maps/${ID}?wait=2`)
    expect(d.urls[2]).toBe(`/api/v1/maps/${ID}?wait=2`)
    // quick 202s: waits Retry-After minus the time the request took
    expect(d.slept).toEqual([900, 900])
  })

  it('does not sleep after a long poll that used up Retry-After', async () => {
    const d = fake(
      [
        { status: 202, body: PENDING('computing'), headers: { 'Retry-After': '2' } },
        { status: 200, body: DONE },
      ],
      5000,
    )
    await fetchMap('x', { deps: d })
    expect(d.slept).toEqual([])
  })

  it('gives up with a timeout after 60 s', async () => {
    const replies: Reply[] = Array.from({ length: 100 }, () => ({ status: 202, body: PENDING('computing'), headers: { 'Retry-After': '1' } }))
    const d = fake(replies, 5000)
    const err = await fetchMap('x', { deps: d }).catch((e) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect(err.code).toBe('timeout')
    expect(d.t - 1_000_000).toBeLessThanOrEqual(60_000)
    expect(d.urls.length).toBe(12)
    // the last poll only waits for what is left
    expect(d.urls.every((u) => /wait=[0-8]$/.test(u))).toBe(true)
  })

  it('decodes API errors with code, message and Retry-After', async () => {
    const d = fake([{ status: 429, body: { error: { code: 'rate_limited', message: 'Slow down.' } }, headers: { 'Retry-After': '4' } }])
    const err = await fetchMap('x', { deps: d }).catch((e) => e)
    expect(err.code).toBe('rate_limited')
    expect(err.status).toBe(429)
    expect(err.retryAfter).toBe(4)
    expect(err.serverMessage).toBe('Slow down.')
  })

  it('maps 422 no_known_terms and non-JSON errors', async () => {
    const d = fake([{ status: 422, body: { error: { code: 'no_known_terms', message: 'No known terms in "zz".' } } }])
    expect((await fetchMap('zz', { deps: d }).catch((e) => e)).code).toBe('no_known_terms')
    const d2 = fake([{ status: 502, text: '<html>Bad gateway</html>' }])
    const e2 = await fetchMap('zz', { deps: d2 }).catch((e) => e)
    expect(e2.code).toBe('http')
    expect(e2.status).toBe(502)
    const d3 = fake([{ status: 503, text: 'down' }])
    expect((await fetchMap('zz', { deps: d3 }).catch((e) => e)).code).toBe('unavailable')
  })

  it('reports network failures and unreadable answers', async () => {
    expect((await fetchMap('x', { deps: fake(['network']) }).catch((e) => e)).code).toBe('network')
    expect((await fetchMap('x', { deps: fake([{ status: 200, text: 'not json' }]) }).catch((e) => e)).code).toBe('bad_response')
    expect((await fetchMap('x', { deps: fake([{ status: 200, body: { status: 'weird' } }]) }).catch((e) => e)).code).toBe('bad_response')
  })

  it('stops when aborted', async () => {
    const ctrl = new AbortController()
    ctrl.abort()
    const err = await fetchMap('x', { deps: fake([{ status: 200, body: DONE }]), signal: ctrl.signal }).catch((e) => e)
    expect(isAbort(err)).toBe(true)
  })

  it('only follows same-origin poll paths', () => {
    expect(safePollPath('/api/v1/maps/abc', ID)).toBe('/api/v1/maps/abc')
    expect(safePollPath('https://evil.example/x', ID)).toBe(`/api/v1/maps/${ID}`)
    expect(safePollPath('//evil.example/x', ID)).toBe(`/api/v1/maps/${ID}`)
    expect(() => safePollPath(undefined, 'nope')).toThrow(ApiError)
  })
})

describe('requestJSON / terms / Retry-After', () => {
  it('times out', async () => {
    const deps: Deps = {
      fetch: (_url, init) =>
        new Promise((_resolve, reject) => {
          init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')))
        }),
      now: () => Date.now(),
      sleep: async () => {},
    }
    const err = await requestJSON('/x', {}, { deps, timeoutMs: 20 }).catch((e) => e)
    expect(err.code).toBe('timeout')
  })

  it('fills empty lists for terms', async () => {
    const d = fake([{ status: 200, body: { query: 'zz' } }])
    const t = await fetchTerms('zz', undefined, d)
    expect(t.spans).toEqual([])
    expect(t.recognized_terms).toEqual([])
    expect(d.urls[0]).toBe('/api/v1/terms?q=zz')
  })

  it('parses Retry-After seconds and dates', () => {
    expect(parseRetryAfter('3')).toBe(3)
    expect(parseRetryAfter(null)).toBeUndefined()
    expect(parseRetryAfter('soon')).toBeUndefined()
    const now = Date.parse('2025-01-01T00:00:00Z')
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:10 GMT', now)).toBe(10)
  })
})
