import { describe, expect, it } from 'vitest'
import { decodingSlider, scalesFor, sliderMax } from '../src/scale'

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

describe('the slider of an uploaded map', () => {
  it('starts at 3.1 for a z or t map that goes past 10, and reaches its maximum', () => {
    expect(decodingSlider(25.23)).toEqual({ value: 3.1, max: 25.3, step: 0.1, decimals: 1 })
    expect(decodingSlider(10.34)).toEqual({ value: 3.1, max: 10.4, step: 0.1, decimals: 1 })
  })

  it('starts at 30 % of the largest |value| of a map that stays low', () => {
    expect(decodingSlider(8.3)).toEqual({ value: 2.4, max: 8.3, step: 0.1, decimals: 1 })
    // betas, percentages of signal change: a finer step
    expect(decodingSlider(0.8)).toEqual({ value: 0.24, max: 0.8, step: 0.01, decimals: 2 })
    expect(decodingSlider(0.05)).toEqual({ value: 0.015, max: 0.05, step: 0.001, decimals: 3 })
  })

  it('keeps at least fifty steps and a value below the top', () => {
    for (const m of [0.0123, 0.37, 1, 2.5, 4.99, 7.77, 123.4]) {
      const s = decodingSlider(m)
      expect(s.max / s.step, String(m)).toBeGreaterThanOrEqual(50)
      expect(s.max, String(m)).toBeGreaterThanOrEqual(m)
      expect(s.value, String(m)).toBeLessThan(s.max)
      expect(s.value, String(m)).toBeLessThanOrEqual(Math.min(3.1, 0.3 * m) + 1e-9)
      expect(s.value, String(m)).toBeGreaterThan(0)
    }
  })

  it('does not break on an empty or unreadable maximum', () => {
    for (const m of [0, NaN, -1]) {
      const s = decodingSlider(m)
      expect(s.value).toBeGreaterThan(0)
      expect(s.max).toBeGreaterThan(s.value)
    }
  })
})
