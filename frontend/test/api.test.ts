import { describe, expect, it } from 'vitest'
import {
  ApiError,
  fetchDecoding,
  fetchMap,
  fetchModels,
  fetchTerms,
  mapsQueryUrl,
  isAbort,
  parseHeaderLines,
  parseRetryAfter,
  requestJSON,
  safePollPath,
  uploadDecoding,
  type Deps,
  type UploadFetch,
  type UploadProgress,
} from '../src/api'
import { explainDecodeError } from '../src/messages'

type Reply = { status: number; body?: unknown; text?: string; headers?: Record<string, string> } | 'network'

/** A fake server: answers in order, records the URLs; the clock advances on sleep and per request. */
function fake(replies: Reply[], requestMs = 0): Deps & { urls: string[]; inits: RequestInit[]; t: number; slept: number[] } {
  const state = {
    urls: [] as string[],
    inits: [] as RequestInit[],
    t: 1_000_000,
    slept: [] as number[],
  }
  const deps = {
    ...state,
    fetch: async (url: string, init?: RequestInit): Promise<Response> => {
      deps.urls.push(url)
      deps.inits.push(init ?? {})
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

describe('several models', () => {
  it('names a model other than the default in the first request only', async () => {
    expect(mapsQueryUrl('viewing faces', 1)).toBe('/api/v1/maps?q=viewing%20faces&wait=1')
    expect(mapsQueryUrl('viewing faces', 1, '')).toBe('/api/v1/maps?q=viewing%20faces&wait=1')
    expect(mapsQueryUrl('a&b', 10, 'text2brain-nn-tiny')).toBe('/api/v1/maps?q=a%26b&wait=10&model=text2brain-nn-tiny')
    // the poll URL is the map's id, its model's: it needs no model=
    const d = fake([
      { status: 202, body: { ...PENDING('computing'), model: 'text2brain-nn-tiny' }, headers: { 'Retry-After': '1' } },
      { status: 200, body: { ...DONE, model: 'text2brain-nn-tiny', model_version: 'nn-1' } },
    ])
    const r = await fetchMap('viewing faces', { deps: d, model: 'text2brain-nn-tiny' })
    expect(r.model).toBe('text2brain-nn-tiny')
    expect(d.urls).toEqual(['/api/v1/maps?q=viewing%20faces&wait=1&model=text2brain-nn-tiny', `/api/v1/maps/${ID}?wait=2`])
  })

  it('asks for the terms of a model, and reads the models list', async () => {
    const d = fake([
      { status: 200, body: { query: 'faces', recognized_terms: ['faces'], unmapped_terms: ['faces'], spans: [] } },
      { status: 200, body: { default: 'neuroquery', models: [{ id: 'x' }, { id: 'neuroquery', default: true }] } },
    ])
    const t = await fetchTerms('faces', undefined, d, 'x')
    expect(t.unmapped_terms).toEqual(['faces'])
    expect(d.urls[0]).toBe('/api/v1/terms?q=faces&model=x')
    const m = await fetchModels(d)
    expect(m.models.map((x) => x.id)).toEqual(['neuroquery', 'x'])
    expect(d.urls[1]).toBe('/api/v1/models')
  })

  it("says in words that a model is not served (the server's unknown_model)", async () => {
    const d = fake([{ status: 400, body: { error: { code: 'unknown_model', message: 'There is no model "nope" here' } } }])
    const err = await fetchMap('faces', { deps: d, model: 'nope' }).catch((e) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect(err.code).toBe('unknown_model')
    expect(err.serverMessage).toBe('There is no model "nope" here')
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

const DEC = 'fedcba9876543210fedcba9876543210'
const DECODED = {
  id: DEC,
  kind: 'decoding',
  status: 'done',
  file: { name: 'zstat1.nii.gz', bytes: 1234, sha256: 'ab'.repeat(32) },
  related_terms: [{ term: 'face', score: 0.41 }],
  related_articles: [],
  map_url: `/api/v1/decodings/${DEC}/map.nii.gz`,
}
const DEC_PENDING = (stage: string) => ({ id: DEC, kind: 'decoding', status: 'pending', stage, poll: `/api/v1/decodings/${DEC}` })
const mapFile = (): File => new File([new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3])], 'zstat1.nii.gz')

describe('uploadDecoding', () => {
  it('sends the file as a form with its name and returns a finished decoding', async () => {
    const d = fake([{ status: 200, body: DECODED }])
    const stages: UploadProgress[] = []
    const r = await uploadDecoding(mapFile(), 'zstat1.nii.gz', { deps: d, onProgress: (p) => stages.push(p) })
    expect(r.id).toBe(DEC)
    expect(d.urls).toEqual(['/api/v1/decodings?wait=1'])
    expect(d.inits[0].method).toBe('POST')
    const body = d.inits[0].body as FormData
    expect(body).toBeInstanceOf(FormData)
    const part = body.get('file') as File
    expect(part.name).toBe('zstat1.nii.gz')
    expect(part.size).toBe(7)
    expect((d.inits[0].headers as Record<string, string>).Accept).toBe('application/json')
    expect(stages[0]).toEqual({ stage: 'uploading', loaded: 0, total: 7 })
  })

  it('polls the decoding after 202, reporting the stages, until done', async () => {
    const d = fake(
      [
        { status: 202, body: DEC_PENDING('queued'), headers: { 'Retry-After': '1' } },
        { status: 202, body: DEC_PENDING('computing'), headers: { 'Retry-After': '1' } },
        { status: 200, body: DECODED },
      ],
      100,
    )
    const stages: string[] = []
    const r = await uploadDecoding(mapFile(), 'zstat1.nii.gz', { deps: d, onProgress: (p) => stages.push(p.stage) })
    expect(r.status).toBe('done')
    expect(stages).toEqual(['uploading', 'queued', 'computing'])
    expect(d.urls.slice(1)).toEqual([`/api/v1/decodings/${DEC}?wait=2`, `/api/v1/decodings/${DEC}?wait=2`])
    expect(d.inits.slice(1).every((i) => i.method === 'GET')).toBe(true)
  })

  it('polls by id when the poll URL is not a same-origin path', async () => {
    const d = fake([
      { status: 202, body: { ...DEC_PENDING('queued'), poll: 'https://elsewhere.example/x' } },
      { status: 200, body: DECODED },
    ])
    await uploadDecoding(mapFile(), 'zstat1.nii.gz', { deps: d })
    expect(d.urls[1]).toBe(`/api/v1/decodings/${DEC}?wait=2`)
  })

  it('reports the bytes sent, then that the server checks the file', async () => {
    const d = fake([])
    const upload: UploadFetch = async (url, init, onProgress) => {
      expect(url).toBe('/api/v1/decodings?wait=1')
      expect(init.body).toBeInstanceOf(FormData)
      onProgress(0, 1000)
      onProgress(400, 1000)
      onProgress(400, 1000)
      onProgress(1000, 1000)
      return new Response(JSON.stringify(DECODED), { status: 200 })
    }
    const seen: UploadProgress[] = []
    await uploadDecoding(mapFile(), 'zstat1.nii.gz', { deps: d, upload, onProgress: (p) => seen.push(p) })
    expect(seen).toEqual([
      { stage: 'uploading', loaded: 0, total: 7 },
      { stage: 'uploading', loaded: 0, total: 1000 },
      { stage: 'uploading', loaded: 400, total: 1000 },
      { stage: 'checking', loaded: 1000, total: 1000 },
    ])
    expect(d.urls).toEqual([])
  })

  it('starts the 60 s once the upload has answered: a slow upload is not a timeout', async () => {
    const d = fake([{ status: 200, body: DECODED }])
    const upload: UploadFetch = async () => {
      d.t += 120_000 // two minutes on a slow line
      return new Response(JSON.stringify(DEC_PENDING('queued')), { status: 202, headers: { 'Retry-After': '1' } })
    }
    const r = await uploadDecoding(mapFile(), 'zstat1.nii.gz', { deps: d, upload })
    expect(r.id).toBe(DEC)
    // the first poll is at once: the upload used up Retry-After
    expect(d.slept).toEqual([])
  })

  it('gives up 60 s after the upload with a timeout', async () => {
    const replies: Reply[] = Array.from({ length: 100 }, () => ({ status: 202, body: DEC_PENDING('computing'), headers: { 'Retry-After': '1' } }))
    const d = fake(replies, 5000)
    const err = await uploadDecoding(mapFile(), 'zstat1.nii.gz', { deps: d }).catch((e) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect(err.code).toBe('timeout')
    expect(explainDecodeError(err.toInfo()).text).toMatch(/No decoding after 60 seconds/)
  })

  // Each error the API answers, as the server sends it, and what the visitor reads.
  const cases: [number, string, string, Record<string, string>, RegExp][] = [
    [400, 'invalid_upload', 'The upload is empty: send a NIfTI file.', {}, /upload is empty.*Choose a statistical map saved as NIfTI/],
    [400, 'invalid_nifti', 'The file looks gzip-compressed but is not valid gzip: unexpected EOF', {}, /not valid gzip.*\.nii or \.nii\.gz/],
    [413, 'too_large', 'The file is larger than 30 MB, the most this service takes.', {}, /larger than 30 MB.*Compress it/],
    [422, 'no_transform', 'The image has no sform or qform.', {}, /no sform or qform.*transform to MNI space/],
    [422, 'not_a_volume', 'The image is 2D (64×64×1).', {}, /2D.*3D statistical map/],
    [422, 'empty_map', 'The map is zero everywhere in the brain.', {}, /zero everywhere.*values that vary/],
    [422, 'outside_brain', 'The map has no non-zero value inside the brain mask.', {}, /inside the brain mask.*MNI space/],
    [422, 'decoding_failed', 'This map could not be decoded: internal error', {}, /could not be decoded.*Retry/],
    [429, 'rate_limited', 'Too many requests from your address.', { 'Retry-After': '7' }, /Wait 7 seconds/],
    [503, 'busy', 'Many maps are being computed.', { 'Retry-After': '3' }, /Many maps.*Wait 3 seconds/],
    [503, 'unavailable', 'Decoding uploaded maps is not enabled on this server.', { 'Retry-After': '5' }, /not enabled.*Retry in a few seconds/],
  ]
  for (const [status, code, message, headers, want] of cases) {
    it(`${status} ${code} → a message that says what to do`, async () => {
      const d = fake([{ status, body: { error: { code, message } }, headers }])
      const err = await uploadDecoding(mapFile(), 'zstat1.nii.gz', { deps: d }).catch((e) => e)
      expect(err).toBeInstanceOf(ApiError)
      expect(err.code).toBe(code)
      expect(err.status).toBe(status)
      const ex = explainDecodeError(err.toInfo())
      expect(ex.text).toMatch(want)
      expect(ex.text).toMatch(/[.!]$/)
      if (headers['Retry-After']) expect(ex.wait).toBe(Number(headers['Retry-After']))
    })
  }

  it('a decoding that fails while polled is its error', async () => {
    const d = fake([
      { status: 202, body: DEC_PENDING('computing') },
      { status: 422, body: { error: { code: 'decoding_failed', message: 'This map could not be decoded: out of memory' } } },
    ])
    const err = await uploadDecoding(mapFile(), 'zstat1.nii.gz', { deps: d }).catch((e) => e)
    expect(err.code).toBe('decoding_failed')
    expect(explainDecodeError(err.toInfo()).retry).toBe(true)
  })

  it('an answer without an error body, a network failure, and an abort', async () => {
    const e1 = await uploadDecoding(mapFile(), 'm.nii', { deps: fake([{ status: 413, text: '<html>Request Entity Too Large</html>' }]) }).catch((e) => e)
    expect(e1.code).toBe('http')
    expect(e1.status).toBe(413)
    const e2 = await uploadDecoding(mapFile(), 'm.nii', { deps: fake(['network']) }).catch((e) => e)
    expect(e2.code).toBe('network')
    expect(explainDecodeError(e2.toInfo()).text).toMatch(/connection/)
    const ctrl = new AbortController()
    ctrl.abort()
    const e3 = await uploadDecoding(mapFile(), 'm.nii', { deps: fake([{ status: 200, body: DECODED }]), signal: ctrl.signal }).catch((e) => e)
    expect(isAbort(e3)).toBe(true)
  })
})

describe('fetchDecoding', () => {
  it('loads a decoding by id, polling while it is pending', async () => {
    const d = fake([{ status: 202, body: DEC_PENDING('computing') }, { status: 200, body: DECODED }])
    const r = await fetchDecoding(DEC, { deps: d })
    expect(r.file?.name).toBe('zstat1.nii.gz')
    expect(d.urls).toEqual([`/api/v1/decodings/${DEC}?wait=1`, `/api/v1/decodings/${DEC}?wait=2`])
  })

  it('refuses a malformed id without a request, and says an unknown one was not found', async () => {
    const d = fake([])
    const err = await fetchDecoding('../maps/x', { deps: d }).catch((e) => e)
    expect(err.code).toBe('not_found')
    expect(d.urls).toEqual([])
    const d2 = fake([{ status: 404, body: { error: { code: 'not_found', message: `There is no decoding with id ${DEC}.` } } }])
    const e2 = await fetchDecoding(DEC, { deps: d2 }).catch((e) => e)
    expect(explainDecodeError(e2.toInfo()).text).toMatch(/no decoding with id.*Upload the map again/)
  })
})

describe('parseHeaderLines', () => {
  it('reads an XMLHttpRequest header block', () => {
    const h = parseHeaderLines('content-type: application/json\r\nretry-after: 2\r\nx-odd:a: b\r\n\r\n')
    expect(h.get('Content-Type')).toBe('application/json')
    expect(h.get('Retry-After')).toBe('2')
    expect(h.get('x-odd')).toBe('a: b')
    expect([...parseHeaderLines('')]).toEqual([])
  })
})
