import { describe, expect, it } from 'vitest'
import {
  findClusters,
  globalPeak,
  maxAbs,
  valueRange,
  mmToVoxel,
  mmToVoxelFrac,
  valueAtMM,
  voxelToMM,
  voxelVolume,
  type Affine,
  type Vec3,
  type Volume,
} from '../src/clusters'

const IDENTITY: Affine = [
  [1, 0, 0, 0],
  [0, 1, 0, 0],
  [0, 0, 1, 0],
  [0, 0, 0, 1],
]

// The API's grid: 46×55×46, 4 mm, MNI152 (as nilearn's 4 mm template).
const MNI4: Affine = [
  [4, 0, 0, -90],
  [0, 4, 0, -126],
  [0, 0, 4, -72],
  [0, 0, 0, 1],
]

function volume(dims: Vec3, affine: Affine = IDENTITY): Volume & { data: Float32Array; set(i: number, j: number, k: number, v: number): void } {
  const data = new Float32Array(dims[0] * dims[1] * dims[2])
  return {
    dims,
    data,
    affine,
    set(i, j, k, v) {
      data[i + dims[0] * (j + dims[1] * k)] = v
    },
  }
}

describe('findClusters', () => {
  it('finds two separate positive blobs with their peaks and sizes', () => {
    const v = volume([10, 10, 10])
    // blob A: 2×2×2 cube at (1..2, 1..2, 1..2), peak 6 at (2,2,2)
    for (let i = 1; i <= 2; i++) for (let j = 1; j <= 2; j++) for (let k = 1; k <= 2; k++) v.set(i, j, k, 4)
    v.set(2, 2, 2, 6)
    // blob B: 3 voxels in a row at (7..9, 7, 7), peak 9 at (8,7,7)
    v.set(7, 7, 7, 3.5)
    v.set(8, 7, 7, 9)
    v.set(9, 7, 7, 3.2)
    const c = findClusters(v, 3.1)
    expect(c).toHaveLength(2)
    expect(c[0].sign).toBe(1)
    expect(c[0].peak).toBeCloseTo(9)
    expect(c[0].peakVoxel).toEqual([8, 7, 7])
    expect(c[0].size).toBe(3)
    expect(c[1].peak).toBeCloseTo(6)
    expect(c[1].peakVoxel).toEqual([2, 2, 2])
    expect(c[1].size).toBe(8)
    expect(c[1].volumeMM3).toBe(8)
  })

  it('finds negative blobs with z ≤ −t and sorts by |peak|', () => {
    const v = volume([8, 8, 8])
    v.set(1, 1, 1, 4)
    v.set(5, 5, 5, -7)
    v.set(5, 5, 6, -3.5)
    v.set(6, 6, 6, -2) // below |t|: not part of it
    const c = findClusters(v, 3)
    expect(c.map((x) => x.sign)).toEqual([-1, 1])
    expect(c[0].peak).toBeCloseTo(-7)
    expect(c[0].size).toBe(2)
    expect(c[0].peakVoxel).toEqual([5, 5, 5])
    expect(c[1].peak).toBeCloseTo(4)
  })

  it('honours the positive/negative toggles', () => {
    const v = volume([8, 8, 8])
    v.set(1, 1, 1, 4)
    v.set(5, 5, 5, -7)
    expect(findClusters(v, 3, { negative: false }).map((x) => x.sign)).toEqual([1])
    expect(findClusters(v, 3, { positive: false }).map((x) => x.sign)).toEqual([-1])
    expect(findClusters(v, 3, { positive: false, negative: false })).toEqual([])
  })

  it('changes the count and size with the threshold', () => {
    const v = volume([12, 3, 3])
    // a ridge: 3 4 5 4 3 2 5 along i (j=k=1)
    const vals = [3, 4, 5, 4, 3, 2, 5]
    vals.forEach((z, i) => v.set(i, 1, 1, z))
    const low = findClusters(v, 2)
    expect(low).toHaveLength(1)
    expect(low[0].size).toBe(7)
    const mid = findClusters(v, 3.1)
    expect(mid).toHaveLength(2)
    expect(mid.map((c) => c.size).sort()).toEqual([1, 3])
    const high = findClusters(v, 5)
    expect(high).toHaveLength(2)
    expect(high.every((c) => c.size === 1)).toBe(true)
    expect(findClusters(v, 5.01)).toHaveLength(0)
  })

  it('joins voxels that touch only at a corner (26-connectivity)', () => {
    const v = volume([5, 5, 5])
    v.set(1, 1, 1, 5)
    v.set(2, 2, 2, 4) // corner neighbour
    v.set(3, 3, 3, 4) // corner neighbour of the previous
    v.set(1, 1, 4, 4) // two or more voxels away from all of them: separate
    const c = findClusters(v, 3)
    expect(c).toHaveLength(2)
    expect(c[0].size).toBe(3)
    expect(c[0].peakVoxel).toEqual([1, 1, 1])
    expect(c[1].size).toBe(1)
  })

  it('does not join a positive and a negative voxel that touch', () => {
    const v = volume([3, 3, 3])
    v.set(0, 0, 0, 5)
    v.set(1, 0, 0, -5)
    const c = findClusters(v, 1)
    expect(c).toHaveLength(2)
    expect(c.map((x) => x.size)).toEqual([1, 1])
  })

  it('does not wrap around the volume edges', () => {
    const v = volume([4, 4, 4])
    v.set(3, 0, 0, 5) // last voxel of row 0
    v.set(0, 1, 0, 5) // first voxel of row 1: adjacent in memory, not in space
    expect(findClusters(v, 1)).toHaveLength(2)
  })

  it('ignores zeros at threshold 0 and reports the peak through the affine', () => {
    const v = volume([46, 55, 46], MNI4)
    v.set(12, 36, 24, 5.31) // x = -42, y = 18, z = 24
    v.set(13, 36, 24, 4)
    const c = findClusters(v, 0)
    expect(c).toHaveLength(1)
    expect(c[0].peakMM).toEqual([-42, 18, 24])
    expect(c[0].size).toBe(2)
    expect(c[0].volumeMM3).toBe(128)
  })

  it('is fast enough for the 4 mm grid', () => {
    const v = volume([46, 55, 46], MNI4)
    for (let i = 0; i < v.data.length; i++) v.data[i] = Math.sin(i * 0.37) * 6
    const t0 = performance.now()
    const c = findClusters(v, 3.1)
    expect(c.length).toBeGreaterThan(0)
    expect(performance.now() - t0).toBeLessThan(500)
  })
})

describe('affine helpers', () => {
  it('maps voxels to mm and back', () => {
    expect(voxelToMM(MNI4, [0, 0, 0])).toEqual([-90, -126, -72])
    expect(voxelToMM(MNI4, [22, 31, 18])).toEqual([-2, -2, 0])
    expect(mmToVoxelFrac(MNI4, [-2, -2, 0])).toEqual([22, 31, 18])
    const v = volume([46, 55, 46], MNI4)
    expect(mmToVoxel(v, [-1, -0.5, 1.9])).toEqual([22, 31, 18])
    expect(mmToVoxel(v, [500, 0, 0])).toBeNull()
  })

  it('inverts a rotated, flipped affine', () => {
    const a: Affine = [
      [0, -2, 0, 10],
      [3, 0, 0, -5],
      [0, 0, -1, 7],
      [0, 0, 0, 1],
    ]
    const mm = voxelToMM(a, [4, 5, 6])
    const back = mmToVoxelFrac(a, mm)
    back.forEach((x, i) => expect(x).toBeCloseTo([4, 5, 6][i]))
    expect(voxelVolume(a)).toBe(6)
    expect(voxelVolume(MNI4)).toBe(64)
  })

  it('reads values at mm, 0 outside', () => {
    const v = volume([46, 55, 46], MNI4)
    v.set(12, 36, 24, -3.5)
    expect(valueAtMM(v, [-42, 18, 24])).toBeCloseTo(-3.5)
    expect(valueAtMM(v, [-41, 19, 23])).toBeCloseTo(-3.5)
    expect(valueAtMM(v, [1000, 0, 0])).toBe(0)
  })
})

describe('globalPeak / maxAbs', () => {
  it('finds the largest |z| for the signs shown', () => {
    const v = volume([4, 4, 4])
    v.set(1, 1, 1, 4)
    v.set(2, 2, 2, -6)
    expect(globalPeak(v)?.value).toBeCloseTo(-6)
    expect(globalPeak(v)?.voxel).toEqual([2, 2, 2])
    expect(globalPeak(v, { negative: false })?.value).toBeCloseTo(4)
    expect(globalPeak(v, { positive: false, negative: false })?.value).toBeCloseTo(-6)
    expect(maxAbs(v.data)).toBeCloseTo(6)
    expect(globalPeak(volume([2, 2, 2]))).toBeNull()
  })
})

describe('valueRange', () => {
  it('gives the extremes of each sign, 0 for a sign without values', () => {
    expect(valueRange([1, -2, 3.5, NaN, -0.5])).toEqual({ min: -2, max: 3.5 })
    expect(valueRange([1, 2])).toEqual({ min: 0, max: 2 })
    expect(valueRange([-1, -4])).toEqual({ min: -4, max: 0 })
    expect(valueRange([])).toEqual({ min: 0, max: 0 })
  })
})
