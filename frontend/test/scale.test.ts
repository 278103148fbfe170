import { describe, expect, it } from 'vitest'
import { scalesFor, sliderMax } from '../src/scale'

const base = { threshold: 3.1, showPos: true, showNeg: true, max: 25.2, min: -6.4 }

describe('colour scales', () => {
  it('runs each sign from the threshold to its own extreme', () => {
    const s = scalesFor(base)
    expect(s.pos).toEqual({ lo: 3.1, hi: 25.2 })
    expect(s.neg).toEqual({ lo: 3.1, hi: 6.4 })
  })

  it('drops a sign that is hidden or has nothing beyond the threshold', () => {
    expect(scalesFor({ ...base, showPos: false }).pos).toBeNull()
    expect(scalesFor({ ...base, showPos: false }).neg).toEqual({ lo: 3.1, hi: 6.4 })
    expect(scalesFor({ ...base, showNeg: false }).neg).toBeNull()
    expect(scalesFor({ ...base, min: -2.5 }).neg).toBeNull()
    expect(scalesFor({ ...base, min: 0 }).neg).toBeNull()
    expect(scalesFor({ ...base, threshold: 7 }).neg).toBeNull()
    expect(scalesFor({ ...base, threshold: 30 })).toEqual({ pos: null, neg: null })
  })

  it('keeps a bar for a value exactly at the threshold and a non-empty range', () => {
    const s = scalesFor({ ...base, max: 3.1 })
    expect(s.pos!.lo).toBe(3.1)
    expect(s.pos!.hi).toBeGreaterThan(3.1)
  })

  it('never uses a zero threshold', () => {
    const s = scalesFor({ ...base, threshold: 0 })
    expect(s.pos!.lo).toBeGreaterThan(0)
    expect(s.neg!.lo).toBeGreaterThan(0)
  })
})

describe('the slider', () => {
  it('reaches the largest |z| rounded up, at least 4 so that 3.1 fits', () => {
    expect(sliderMax(25.2)).toBe(26)
    expect(sliderMax(25)).toBe(25)
    expect(sliderMax(2.5)).toBe(4)
    expect(sliderMax(NaN)).toBe(4)
  })
})
