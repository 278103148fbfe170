import { describe, expect, it } from 'vitest'
import { decodedTermBars, formatWeight, termBars } from '../src/terms'

const RELATED = [
  { term: 'viewing', weight: 0.7702 },
  { term: 'face', weight: 0.6321 },
  { term: 'emotional', weight: 0.034708 },
  { term: 'scene', weight: 0.02525 },
  { term: 'activation', weight: 0.020580394684807168 },
  { term: 'visual', weight: 0.012925 },
]

describe('terms that shaped the map', () => {
  it('shows weights with two significant digits', () => {
    expect(formatWeight(0.7702)).toBe('0.77')
    expect(formatWeight(0.020580394684807168)).toBe('0.021')
    expect(formatWeight(0.034708)).toBe('0.035')
    expect(formatWeight(0.0012)).toBe('0.0012')
    expect(formatWeight(1)).toBe('1.0')
    expect(formatWeight(0)).toBe('0')
    expect(formatWeight(NaN)).toBe('–')
  })

  it('marks the recognised terms and scales each group to its largest weight', () => {
    const bars = termBars(RELATED, ['viewing', 'face'])
    expect(bars.map((b) => b.query)).toEqual([true, true, false, false, false, false])
    expect(bars[0].fraction).toBe(1)
    expect(bars[1].fraction).toBeCloseTo(0.6321 / 0.7702)
    // the largest added term gets a full bar, not 4 % of the query's
    expect(bars[2].fraction).toBe(1)
    expect(bars[3].fraction).toBeCloseTo(0.02525 / 0.034708)
    expect(bars[5].label).toBe('0.013')
  })

  it('puts the query terms first, and copes with nothing recognised or no terms', () => {
    const bars = termBars([{ term: 'x', weight: 0.1 }, { term: 'Memory', weight: 0.9 }], ['memory'])
    expect(bars.map((b) => b.term)).toEqual(['Memory', 'x'])
    expect(termBars(RELATED, []).every((b) => !b.query)).toBe(true)
    expect(termBars(undefined, undefined)).toEqual([])
    expect(termBars([{ term: 'z', weight: 0 }], []).map((b) => b.fraction)).toEqual([0])
  })
})

describe('decodedTermBars', () => {
  it("keeps the decoder's order and scales the bars to the best score", () => {
    const bars = decodedTermBars([
      { term: 'face', score: 0.42 },
      { term: 'fusiform', score: 0.21 },
      { term: 'noise', score: -0.05 },
      { term: '', score: 0.3 },
    ])
    expect(bars.map((b) => b.term)).toEqual(['face', 'fusiform', 'noise'])
    expect(bars.map((b) => b.fraction)).toEqual([1, 0.5, 0])
    expect(bars.map((b) => b.label)).toEqual(['0.42', '0.21', '-0.050'])
    expect(bars.every((b) => !b.query)).toBe(true)
  })

  it('copes with no terms and unreadable scores', () => {
    expect(decodedTermBars(undefined)).toEqual([])
    expect(decodedTermBars([{ term: 'x', score: NaN }])[0]).toMatchObject({ fraction: 0, label: '–', weight: 0 })
  })
})
