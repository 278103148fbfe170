import { describe, expect, it } from 'vitest'
import { explainDecodeError, explainError, progressText, readyText, stageLabel, tooLongText } from '../src/messages'

describe('explainError', () => {
  it('tells what to do for every API error code', () => {
    const codes = [
      'missing_query',
      'invalid_query',
      'invalid_wait',
      'too_long',
      'too_large',
      'no_known_terms',
      'prediction_failed',
      'rate_limited',
      'unavailable',
      'misconfigured',
      'not_found',
      'unknown_model',
      'invalid_feedback',
      'invalid_json',
      'method_not_allowed',
      'network',
      'timeout',
      'bad_response',
      'http',
      'something_new',
    ]
    for (const code of codes) {
      const e = explainError({ code, status: 400 })
      expect(e.text.length, code).toBeGreaterThan(20)
      expect(e.text, code).toMatch(/[.!]$/)
      expect(e.text, code).toMatch(/try|Try|Retry|retry|Type|Shorten|Write|Search|Reload|Rephrase|Wait/)
    }
  })

  it("keeps the server's list of models for unknown_model and says where to pick one", () => {
    const e = explainError({
      code: 'unknown_model',
      status: 400,
      message: 'There is no model "nope" here; the models are neuroquery, text2brain-nn-tiny (see /api/v1/models)',
    })
    expect(e.text).toBe(
      'There is no model "nope" here; the models are neuroquery, text2brain-nn-tiny (see /api/v1/models). Pick one in the Model list and try again.',
    )
    expect(e.retry).toBe(false)
  })

  it('keeps the server message and points to other words and examples for no_known_terms', () => {
    const e = explainError({ code: 'no_known_terms', status: 422, message: 'None of the words in "qwzx" is known to the model' })
    expect(e.text).toContain('None of the words in "qwzx" is known to the model.')
    expect(e.text).toMatch(/other words/)
    expect(e.text).toMatch(/examples/)
    expect(e.examples).toBe(true)
    expect(e.retry).toBe(false)
  })

  it('explains terms without a map and a busy service', () => {
    const m = explainError({ code: 'no_mapped_terms', status: 422, message: 'The model knows "abscess" but has no brain map for it' })
    expect(m.text).toMatch(/abscess/)
    expect(m.text).toMatch(/other words/)
    expect(m.examples).toBe(true)
    const b = explainError({ code: 'busy', status: 503, message: 'Too many maps are being computed.', retryAfter: 3 } as never)
    expect(b.text).toMatch(/Wait|wait/)
    expect(b.retry).toBe(true)
  })

  it('does not suggest twice when the server already says what to try', () => {
    const server =
      '"zzqx wvvb" contains no term the model knows, so there is no map to show. Try words from neuroimaging papers, such as "working memory", "faces" or "reading".'
    const e = explainError({ code: 'no_known_terms', status: 422, message: server })
    expect(e.text).toBe(server)
    expect(e.text.match(/\btry\b/gi)).toHaveLength(1)
  })

  it('shortens a long query quoted in a server message', () => {
    const long = 'zzqx '.repeat(400).trim()
    const e = explainError({ code: 'no_known_terms', status: 422, message: `"${long}" contains no term the model knows. Try "faces".` })
    expect(e.text.length).toBeLessThan(140)
    expect(e.text).toMatch(/^"zzqx zzqx .*…" contains no term/)
    expect(e.text).toContain('Try "faces".')
  })

  it('has a sentence for a map file that cannot be read', () => {
    const e = explainError({ code: 'bad_map', status: 0 })
    expect(e.text).toBe('The map file could not be read. Retry in a moment.')
    expect(e.retry).toBe(true)
  })

  it('asks to wait for rate_limited, with the Retry-After seconds when known', () => {
    expect(explainError({ code: 'rate_limited', status: 429, retryAfter: 2.2 }).wait).toBe(3)
    expect(explainError({ code: 'rate_limited', status: 429 }).wait).toBeUndefined()
    expect(explainError({ code: 'unavailable', status: 503, retryAfter: 5 }).wait).toBe(5)
    expect(explainError({ code: 'rate_limited', status: 429, retryAfter: 3 }).text).toContain('Wait 3 seconds')
    expect(explainError({ code: 'rate_limited', status: 429, retryAfter: 1 }).text).toContain('Wait 1 second ')
    expect(explainError({ code: 'rate_limited', status: 429 }).text).toContain('a few seconds')
    expect(explainError({ code: 'rate_limited' }).retry).toBe(true)
  })

  it('explains 503, 500, offline and the timeout', () => {
    expect(explainError({ code: 'unavailable', status: 503 }).text).toMatch(/Retry in a few seconds/)
    expect(explainError({ code: 'misconfigured', status: 500 }).text).toMatch(/try again later/)
    expect(explainError({ code: 'network', status: 0 }).text).toMatch(/offline/)
    const t = explainError({ code: 'timeout' })
    expect(t.text).toMatch(/60 seconds/)
    expect(t.text).toMatch(/retry/)
    expect(t.retry).toBe(true)
  })

  it('mentions the limit for too_long and the HTTP status for unknown errors', () => {
    expect(explainError({ code: 'too_long', status: 413 }).text).toContain('2,000 characters')
    expect(explainError({ code: 'http', status: 502 }).text).toContain('HTTP 502')
  })

  it('adds a full stop to server sentences that lack one', () => {
    expect(explainError({ code: 'prediction_failed', message: 'The model failed' }).text).toMatch(/^The model failed\. /)
  })
})

describe('progressText', () => {
  it('names the stage and the seconds', () => {
    expect(progressText('queued', 0)).toBe('Queued… 0 s')
    expect(progressText('computing', 12)).toBe('Computing… 12 s')
    expect(progressText(undefined, 0)).toBe('Sending the query… 0 s')
    expect(progressText(undefined, 3)).toBe('Computing… 3 s')
    expect(progressText('downloading', 2)).toBe('Downloading the map… 2 s')
    expect(progressText('drawing', 3)).toBe('Drawing… 3 s')
  })

  it('gives the stage alone, for the live region (the seconds are not announced)', () => {
    expect(stageLabel('computing', 12)).toBe('Computing…')
    expect(stageLabel(undefined, 0)).toBe('Sending the query…')
    expect(stageLabel(undefined, 1)).toBe('Computing…')
    expect(stageLabel('downloading', 5)).toBe('Downloading the map…')
    expect(stageLabel('drawing', 5)).toBe('Drawing…')
  })
})

describe('readyText', () => {
  it('says "from the cache" for an answer the server had, else the computing time', () => {
    expect(readyText({ hits: 3, compute_ms: 312 })).toBe('Map ready (from the cache).')
    expect(readyText({ compute_ms: 312 })).toBe('Map ready · computed in 0.3 s.')
    expect(readyText({ hits: 0, compute_ms: 1460 })).toBe('Map ready · computed in 1.5 s.')
    expect(readyText({})).toBe('Map ready.')
  })
})

describe('texts over the limit', () => {
  it('says how long the text is and what the limit is', () => {
    expect(tooLongText(2001, 2000)).toBe('The text is 2,001 characters; the limit is 2,000 — shorten it.')
    const e = explainError({ code: 'too_long', length: 2345 })
    expect(e.text).toContain('2,345 characters')
    expect(e.text).toContain('2,000')
    expect(e.retry).toBe(false)
  })
})

describe('explainDecodeError', () => {
  it('tells what to do for every error of a decoding', () => {
    const codes = [
      'empty_file',
      'unreadable_file',
      'several_files',
      'file_too_large',
      'too_large',
      'nifti_pair',
      'not_nifti',
      'invalid_upload',
      'invalid_nifti',
      'no_transform',
      'not_a_volume',
      'empty_map',
      'outside_brain',
      'decoding_failed',
      'not_found',
      'timeout',
      'busy',
      'rate_limited',
      'unavailable',
      'network',
      'bad_map',
      'bad_response',
      'http',
      'something_new',
    ]
    for (const code of codes) {
      const e = explainDecodeError({ code, status: 400, file: 'zstat1.nii.gz' })
      expect(e.text.length, code).toBeGreaterThan(20)
      expect(e.text, code).toMatch(/[.!]$/)
      expect(e.text, code).toMatch(/try|Try|Retry|retry|Choose|Convert|Compress|Check|Upload|Drop|Save|Wait/)
      // no suggestion of example queries for a file
      expect(e.examples, code).toBe(false)
    }
  })

  it('says the size and the limit of a file refused by the page', () => {
    const e = explainDecodeError({ code: 'file_too_large', file: 'sub-01_bold.nii', bytes: 45.2 * 1024 * 1024 })
    expect(e.text).toBe('“sub-01_bold.nii” is 45 MB; the limit is 30 MB. Compress it (.nii.gz) or resample it to 2 mm voxels, and try again.')
    expect(e.retry).toBe(false)
  })

  it('names the file that is not NIfTI, shortened when long', () => {
    expect(explainDecodeError({ code: 'not_nifti', file: 'notes.txt' }).text).toBe(
      '“notes.txt” is not a NIfTI file. Choose a statistical map saved as NIfTI (.nii or .nii.gz), in MNI space.',
    )
    const long = explainDecodeError({ code: 'not_nifti', file: 'x'.repeat(300) + '.txt' }).text
    expect(long.length).toBeLessThan(200)
    expect(explainDecodeError({ code: 'nifti_pair', file: 'con_0001.img' }).text).toMatch(/\.hdr\/\.img pair.*Convert it/)
  })

  it("keeps the server's sentence and adds what to do", () => {
    const e = explainDecodeError({ code: 'invalid_nifti', status: 400, message: "The file's gzip stream is truncated or corrupt (unexpected EOF)." })
    expect(e.text).toBe("The file's gzip stream is truncated or corrupt (unexpected EOF). Choose a statistical map saved as NIfTI (.nii or .nii.gz), in MNI space.")
    expect(explainDecodeError({ code: 'outside_brain', message: 'The map lies outside the brain' }).text).toMatch(/^The map lies outside the brain\. Check that it is in MNI space/)
  })

  it('waits before a retry when the server says how long', () => {
    expect(explainDecodeError({ code: 'busy', status: 503, retryAfter: 4 }).wait).toBe(4)
    expect(explainDecodeError({ code: 'rate_limited', status: 429, retryAfter: 2 }).wait).toBe(2)
    expect(explainDecodeError({ code: 'decoding_failed', status: 422 }).retry).toBe(true)
    expect(explainDecodeError({ code: 'not_a_volume', status: 422 }).retry).toBe(false)
  })
})

describe('stages of a decoding', () => {
  it('names the upload and the check', () => {
    expect(stageLabel('reading', 0)).toBe('Reading the file…')
    expect(stageLabel('uploading', 0)).toBe('Uploading…')
    expect(stageLabel('checking', 2)).toBe('Checking the map…')
    expect(stageLabel('loading', 0)).toBe('Loading the decoding…')
    expect(readyText({ hits: 1 }, 'Decoding')).toBe('Decoding ready (from the cache).')
    expect(readyText({ compute_ms: 2400 }, 'Decoding')).toBe('Decoding ready · computed in 2.4 s.')
  })
})
