import { describe, expect, it } from 'vitest'
import { explainError, progressText } from '../src/messages'

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

  it('keeps the server message and points to other words and examples for no_known_terms', () => {
    const e = explainError({ code: 'no_known_terms', status: 422, message: 'None of the words in "qwzx" is known to the model' })
    expect(e.text).toContain('None of the words in "qwzx" is known to the model.')
    expect(e.text).toMatch(/other words/)
    expect(e.text).toMatch(/examples/)
    expect(e.examples).toBe(true)
    expect(e.retry).toBe(false)
  })

  it('asks to wait for rate_limited, with the Retry-After seconds when known', () => {
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
    expect(progressText('drawing', 3)).toBe('Drawing the map… 3 s')
  })
})
