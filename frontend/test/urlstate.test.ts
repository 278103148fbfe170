import { describe, expect, it } from 'vitest'
import { encodeQueryParam, readCompare, readDecoding, readModel, readQuery, searchWithDecoding, searchWithModel, searchWithQuery, shareDecodingUrl, shareUrl } from '../src/urlstate'
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

  it('keeps a decoding as ?decoding=ID, in place of q and back', () => {
    const id = 'fedcba9876543210fedcba9876543210'
    expect(readDecoding(`?decoding=${id}`)).toBe(id)
    expect(readDecoding(`https://x.example/?decoding=${id.toUpperCase()}%20#api`)).toBe(id)
    expect(readDecoding('?q=faces')).toBe('')
    expect(searchWithDecoding('?lang=en&q=faces', id)).toBe(`?lang=en&decoding=${id}`)
    expect(searchWithQuery(`?decoding=${id}&lang=en`, 'faces')).toBe('?lang=en&q=faces')
    expect(shareDecodingUrl('https://t2b.example', '/', id)).toBe(`https://t2b.example/?decoding=${id}`)
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

  it('shows how to decode the downloaded map, and a decoding by its id when there is one', () => {
    const ex = curlExamples('https://t2b.example', 'faces')
    const decode = ex.find((e) => e.command.includes('/api/v1/decodings?'))
    expect(decode?.command).toBe("curl --data-binary @map.nii.gz -H 'X-File-Name: map.nii.gz' 'https://t2b.example/api/v1/decodings?wait=10'")
    // the file the download example writes
    expect(ex.findIndex((e) => e.command.includes('-o map.nii.gz'))).toBeLessThan(ex.indexOf(decode!))
    expect(ex.some((e) => e.command.includes('/api/v1/decodings/'))).toBe(false)
    const id = 'fedcba9876543210fedcba9876543210'
    const withId = curlExamples('https://t2b.example', 'faces', undefined, id)
    expect(withId.some((e) => e.command === `curl 'https://t2b.example/api/v1/decodings/${id}?wait=5'`)).toBe(true)
  })
})

describe('readout formatting', () => {
  it('formats mm and z with a typographic minus', () => {
    // the coordinate z and the map's value are told apart
    expect(formatReadout([-42.4, 19.6, 24.2], 5.3141)).toBe('x −42, y 20, z 24 mm · z-score 5.31')
    expect(formatReadout([-0.2, 0, 3], -3.456)).toBe('x 0, y 0, z 3 mm · z-score −3.46')
    expect(signed(-0.001, 2)).toBe('0.00')
    // an uploaded map's values are in its own units
    expect(formatReadout([-42.4, 19.6, 24.2], 0.812, 'value')).toBe('x −42, y 20, z 24 mm · value 0.81')
  })
})

describe('URL state of the model and the comparison', () => {
  it('reads model and compare', () => {
    expect(readModel('?q=faces&model=text2brain-nn-tiny')).toBe('text2brain-nn-tiny')
    expect(readModel('?q=faces')).toBe('')
    expect(readCompare('?q=faces&compare=1')).toBe(true)
    expect(readCompare('?q=faces&compare=0')).toBe(false)
    expect(readCompare('?q=faces')).toBe(false)
  })

  it('writes the model unless it is the default, and keeps it through a new query', () => {
    expect(searchWithModel('?q=faces', 'text2brain-nn-tiny')).toBe('?q=faces&model=text2brain-nn-tiny')
    expect(searchWithModel('?q=faces&model=text2brain-nn-tiny', '')).toBe('?q=faces')
    expect(searchWithModel('?q=faces&model=x', 'neuroquery', { defaultId: 'neuroquery' })).toBe('?q=faces')
    expect(searchWithModel('?q=faces', 'm', { compare: true })).toBe('?q=faces&model=m&compare=1')
    expect(searchWithModel('?q=faces&compare=1', 'm', { compare: false })).toBe('?q=faces&model=m')
    // compare untouched when not given
    expect(searchWithModel('?q=faces&compare=1', '')).toBe('?q=faces&compare=1')
    expect(searchWithModel('', '')).toBe('')
    expect(searchWithQuery('?q=old&model=m', 'new')).toBe('?q=new&model=m')
    expect(readModel(searchWithDecoding('?q=old&model=m', 'fedcba9876543210fedcba9876543210'))).toBe('m')
  })

  it('puts the model and the comparison in share links', () => {
    expect(shareUrl('https://t2b.example', '/', 'viewing faces', 'text2brain-nn-tiny')).toBe('https://t2b.example/?q=viewing+faces&model=text2brain-nn-tiny')
    expect(shareUrl('https://t2b.example', '/', 'viewing faces', 'text2brain-nn-tiny', true)).toBe(
      'https://t2b.example/?q=viewing+faces&model=text2brain-nn-tiny&compare=1',
    )
    expect(shareUrl('https://t2b.example', '/', 'viewing faces', '', true)).toBe('https://t2b.example/?q=viewing+faces&compare=1')
    const url = shareUrl('https://t2b.example', '/', 'a&b', 'm')
    expect([readQuery(url), readModel(url)]).toEqual(['a&b', 'm'])
  })

  it('names the model in the API examples when it is not the default', () => {
    const ex = curlExamples('https://t2b.example', 'viewing faces', undefined, undefined, 'text2brain-nn-tiny')
    expect(ex[0].command).toBe("curl 'https://t2b.example/api/v1/maps?q=viewing+faces&wait=10&model=text2brain-nn-tiny'")
    expect(ex[1].command).toContain(`-d '{"query":"viewing faces","wait":10,"model":"text2brain-nn-tiny"}'`)
    expect(ex.find((e) => e.command.includes('/api/v1/terms?'))?.command).toContain('&model=text2brain-nn-tiny')
    expect(ex.some((e) => e.command === "curl 'https://t2b.example/api/v1/models'")).toBe(true)
    // the default's examples name none
    expect(curlExamples('https://t2b.example', 'viewing faces').some((e) => e.command.includes('model='))).toBe(false)
  })
})
