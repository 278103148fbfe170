import { describe, expect, it } from 'vitest'
import { encodeQueryParam, readQuery, searchWithQuery, shareUrl } from '../src/urlstate'
import { curlExamples, shellQuote } from '../src/apidoc'
import { formatReadout, signed } from '../src/format'

describe('URL state', () => {
  it('reads q with + and %20 as spaces', () => {
    expect(readQuery('?q=working+memory')).toBe('working memory')
    expect(readQuery('?q=working%20memory')).toBe('working memory')
    expect(readQuery('https://x.example/?a=1&q=faces%2C+places#top')).toBe('faces, places')
    expect(readQuery('?q=%F0%9F%A7%A0+music')).toBe('🧠 music')
    expect(readQuery('?q=1%2B1')).toBe('1+1')
    expect(readQuery('')).toBe('')
    expect(readQuery('?other=1')).toBe('')
  })

  it('writes q, keeping other parameters, and round-trips', () => {
    expect(searchWithQuery('', 'working memory')).toBe('?q=working+memory')
    expect(searchWithQuery('?lang=en&q=old', 'new one')).toBe('?lang=en&q=new+one')
    expect(searchWithQuery('?q=old', '')).toBe('')
    for (const q of ['a&b=c', '1+1', 'ümlaut ü', '🧠 "quoted"', '50% #hash']) {
      expect(readQuery(searchWithQuery('', q))).toBe(q)
    }
  })

  it('builds share links', () => {
    expect(shareUrl('https://t2b.example', '/', 'viewing faces')).toBe('https://t2b.example/?q=viewing+faces')
    expect(encodeQueryParam('a b&c')).toBe('a+b%26c')
  })
})

describe('API examples', () => {
  it('uses the origin and + for spaces', () => {
    const ex = curlExamples('https://t2b.example', 'working memory', '0123456789abcdef0123456789abcdef')
    expect(ex[0].command).toBe("curl 'https://t2b.example/api/v1/maps?q=working+memory&wait=10'")
    expect(ex[1].command).toContain("-d '{\"query\":\"working memory\",\"wait\":10}'")
    expect(ex.some((e) => e.command.includes('/api/v1/maps/0123456789abcdef0123456789abcdef/map.nii.gz'))).toBe(true)
  })

  it('quotes for the shell', () => {
    expect(shellQuote("it's")).toBe("'it'\\''s'")
    const ex = curlExamples('http://localhost:8080', "Rock 'n' roll")
    expect(ex[1].command).toContain(`'{"query":"Rock '\\''n'\\'' roll","wait":10}'`)
    expect(ex[3].command).toContain('/api/v1/maps/ID/map.nii.gz')
  })
})

describe('readout formatting', () => {
  it('formats mm and z with a typographic minus', () => {
    // the coordinate z and the map's value are told apart
    expect(formatReadout([-42.4, 19.6, 24.2], 5.3141)).toBe('x −42, y 20, z 24 mm · z-score 5.31')
    expect(formatReadout([-0.2, 0, 3], -3.456)).toBe('x 0, y 0, z 3 mm · z-score −3.46')
    expect(signed(-0.001, 2)).toBe('0.00')
  })
})
