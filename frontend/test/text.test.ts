import { describe, expect, it } from 'vitest'
import { codePoints, documentTitle, ellipsize, normalizeQuery, queryLength, shortenQuoted } from '../src/text'

describe('lengths in characters', () => {
  it('counts code points, not UTF-16 units', () => {
    expect(codePoints('faces')).toBe(5)
    expect(codePoints('🧠')).toBe(1)
    expect('🧠'.length).toBe(2)
    expect(codePoints('👍🏽')).toBe(2) // a base and a modifier, as the server's RuneCount
  })

  it('counts a query as the server does: normalised, in code points', () => {
    const emoji = '😀'.repeat(1001) + ' faces'
    expect(emoji.length).toBeGreaterThan(2000) // maxlength would have refused it
    expect(queryLength(emoji, 2000)).toBe(1007)
    expect(queryLength('  working   memory \n', 2000)).toBe(14)
    expect(queryLength('a'.repeat(2001), 2000)).toBe(2001)
    expect(queryLength('a'.repeat(2000), 2000)).toBe(2000)
    // NFKC can lengthen a text: "ﬁ" is "fi"
    expect(queryLength('ﬁ', 2000)).toBe(2)
    // past the server's 16 KiB of raw text it is too long whatever the normalised length
    expect(queryLength(' '.repeat(17000) + 'faces', 2000)).toBe(2001)
  })

  it('normalises as querytext.Normalize', () => {
    expect(normalizeQuery('  Working\tMEMORY\n')).toBe('working memory')
    expect(normalizeQuery('a\u0000b')).toBe('ab')
  })
})

describe('shortening', () => {
  it('cuts at a code point and marks the cut', () => {
    expect(ellipsize('short', 60)).toBe('short')
    expect(ellipsize('abcdefghij', 5)).toBe('abcd…')
    expect(ellipsize('🧠🧠🧠🧠🧠🧠', 3)).toBe('🧠🧠…')
    expect(ellipsize('ab   cdef', 5)).toBe('ab…')
  })

  it('caps the page title', () => {
    expect(documentTitle('viewing faces')).toBe('viewing faces — text2brain')
    const t = documentTitle('word '.repeat(100))
    expect(codePoints(t.replace(/ — text2brain$/, ''))).toBeLessThanOrEqual(60)
    expect(t).toMatch(/… — text2brain$/)
    expect(documentTitle('  ')).toMatch(/^text2brain/)
  })

  it('shortens long quoted passages only', () => {
    expect(shortenQuoted('"zzqx" is unknown. Try "faces".')).toBe('"zzqx" is unknown. Try "faces".')
    const m = shortenQuoted(`"${'x'.repeat(100)}" is unknown. Try "faces".`, 20)
    expect(m).toBe(`"${'x'.repeat(19)}…" is unknown. Try "faces".`)
    // Go's %q escapes quotes inside
    expect(shortenQuoted(`"${'a\\"b '.repeat(20)}" x`, 10)).toMatch(/^"a\\"b a\\"b…" x$|^"a\\"b a\\"…" x$/)
  })
})
