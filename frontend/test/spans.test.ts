import { describe, expect, it } from 'vitest'
import { codePointLength, retainSpans, segmentsFromSpans } from '../src/spans'

const join = (segs: { text: string }[]): string => segs.map((s) => s.text).join('')

describe('segmentsFromSpans', () => {
  it('highlights ASCII spans', () => {
    const text = 'working memory and faces'
    const segs = segmentsFromSpans(text, [
      { start: 0, end: 14, term: 'working memory' },
      { start: 19, end: 24, term: 'face' },
    ])
    expect(segs).toEqual([
      { text: 'working memory', term: 'working memory' },
      { text: ' and ' },
      { text: 'faces', term: 'face' },
    ])
    expect(join(segs)).toBe(text)
  })

  it('counts code points, so an emoji before a term does not shift it', () => {
    const text = '🧠 working memory'
    // 🧠 is one code point (two UTF-16 units): "working memory" starts at code point 2
    const segs = segmentsFromSpans(text, [{ start: 2, end: 16, term: 'working memory' }])
    expect(segs).toEqual([{ text: '🧠 ' }, { text: 'working memory', term: 'working memory' }])
    expect(join(segs)).toBe(text)
  })

  it('handles astral characters inside and after terms', () => {
    const text = '𝒜 faces 😀 music 𝄞'
    const cps = Array.from(text)
    expect(cps.length).toBe(17)
    const segs = segmentsFromSpans(text, [
      { start: 2, end: 7, term: 'faces' },
      { start: 10, end: 15, term: 'music' },
    ])
    expect(segs.filter((s) => s.term).map((s) => s.text)).toEqual(['faces', 'music'])
    expect(join(segs)).toBe(text)
  })

  it('keeps combining marks and non-ASCII text intact', () => {
    const text = 'ça, mémoire de travail'
    const segs = segmentsFromSpans(text, [{ start: 4, end: 11, term: 'mémoire' }])
    expect(segs[1]).toEqual({ text: 'mémoire', term: 'mémoire' })
    expect(join(segs)).toBe(text)
  })

  it('drops overlapping, out-of-range and malformed spans, and sorts them', () => {
    const text = 'visual word form area'
    const segs = segmentsFromSpans(text, [
      { start: 7, end: 16, term: 'word form' },
      { start: 0, end: 11, term: 'visual word' }, // sorted first; the next overlaps it
      { start: 3, end: 8, term: 'x' }, // overlaps
      { start: 17, end: 99, term: 'area' }, // out of range
      { start: 5, end: 5, term: 'empty' },
      { start: -1, end: 2, term: 'neg' },
      { start: 1.5, end: 3, term: 'frac' },
    ])
    expect(segs).toEqual([{ text: 'visual word', term: 'visual word' }, { text: ' form area' }])
    expect(join(segs)).toBe(text)
  })

  it('returns the text as one plain segment without spans', () => {
    expect(segmentsFromSpans('hello', [])).toEqual([{ text: 'hello' }])
    expect(segmentsFromSpans('hello', null)).toEqual([{ text: 'hello' }])
    expect(segmentsFromSpans('', [])).toEqual([{ text: '' }])
  })

  it('uses the span text when the term is missing', () => {
    expect(segmentsFromSpans('abc', [{ start: 0, end: 3, term: '' }])).toEqual([{ text: 'abc', term: 'abc' }])
  })

  it('counts code points', () => {
    expect(codePointLength('🧠ab')).toBe(3)
    expect('🧠ab'.length).toBe(4)
  })
})

describe('retainSpans', () => {
  const spans = [
    { start: 0, end: 7, term: 'reading' },
    { start: 10, end: 14, term: 'book' },
  ]
  it('keeps spans before the edit point', () => {
    expect(retainSpans('reading a book', 'reading a book and', spans)).toEqual(spans)
    expect(retainSpans('reading a book', 'reading a bo', spans)).toEqual([spans[0]])
    expect(retainSpans('reading a book', 'xreading a book', spans)).toEqual([])
  })
  it('drops a span when a letter is appended right after it', () => {
    expect(retainSpans('reading a book', 'reading a books', spans)).toEqual([spans[0]])
    expect(retainSpans('reading', 'readings', [spans[0]])).toEqual([])
    expect(retainSpans('reading', 'reading ', [spans[0]])).toEqual([spans[0]])
  })
  it('counts code points', () => {
    const s = [{ start: 2, end: 7, term: 'faces' }]
    expect(retainSpans('🧠 faces', '🧠 faces!', s)).toEqual(s)
  })
})
