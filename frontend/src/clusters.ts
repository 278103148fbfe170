// Clusters of supra-threshold voxels in a z-map: pure functions, no DOM and no NiiVue.
//
// A volume is a 3-D array in NIfTI order (i fastest, then j, then k) with a 4×4 voxel→mm affine
// (row-major, as in the NIfTI sform). Positive clusters are the 26-connected components of voxels
// with z ≥ t (and z > 0); negative ones of voxels with z ≤ −t (and z < 0).

export type Vec3 = [number, number, number]
/** Row-major 4×4 matrix; the last row is [0, 0, 0, 1]. */
export type Affine = number[][]

export interface Volume {
  dims: Vec3
  data: ArrayLike<number>
  affine: Affine
}

export interface Cluster {
  sign: 1 | -1
  /** Peak z (signed). */
  peak: number
  /** Linear index of the peak voxel. */
  peakIndex: number
  peakVoxel: Vec3
  peakMM: Vec3
  /** Number of voxels. */
  size: number
  /** size × voxel volume (mm³). */
  volumeMM3: number
}

export interface ClusterOptions {
  positive?: boolean
  negative?: boolean
}

/** ijk (voxel indices) → xyz (mm) through the affine. */
export function voxelToMM(affine: Affine, ijk: ArrayLike<number>): Vec3 {
  const [i, j, k] = [ijk[0], ijk[1], ijk[2]]
  return [
    affine[0][0] * i + affine[0][1] * j + affine[0][2] * k + affine[0][3],
    affine[1][0] * i + affine[1][1] * j + affine[1][2] * k + affine[1][3],
    affine[2][0] * i + affine[2][1] * j + affine[2][2] * k + affine[2][3],
  ]
}

function det3(m: Affine): number {
  return (
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
    m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
    m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
  )
}

/** Volume of one voxel in mm³ (|det| of the affine's 3×3 part). */
export function voxelVolume(affine: Affine): number {
  return Math.abs(det3(affine))
}

/** xyz (mm) → fractional ijk through the inverse affine (not rounded). */
export function mmToVoxelFrac(affine: Affine, mm: ArrayLike<number>): Vec3 {
  const m = affine
  const d = det3(m)
  if (d === 0) {
    throw new Error('singular affine')
  }
  const x = mm[0] - m[0][3]
  const y = mm[1] - m[1][3]
  const z = mm[2] - m[2][3]
  // inverse of the 3×3 part by cofactors
  const inv = [
    [
      (m[1][1] * m[2][2] - m[1][2] * m[2][1]) / d,
      (m[0][2] * m[2][1] - m[0][1] * m[2][2]) / d,
      (m[0][1] * m[1][2] - m[0][2] * m[1][1]) / d,
    ],
    [
      (m[1][2] * m[2][0] - m[1][0] * m[2][2]) / d,
      (m[0][0] * m[2][2] - m[0][2] * m[2][0]) / d,
      (m[0][2] * m[1][0] - m[0][0] * m[1][2]) / d,
    ],
    [
      (m[1][0] * m[2][1] - m[1][1] * m[2][0]) / d,
      (m[0][1] * m[2][0] - m[0][0] * m[2][1]) / d,
      (m[0][0] * m[1][1] - m[0][1] * m[1][0]) / d,
    ],
  ]
  return [
    inv[0][0] * x + inv[0][1] * y + inv[0][2] * z,
    inv[1][0] * x + inv[1][1] * y + inv[1][2] * z,
    inv[2][0] * x + inv[2][1] * y + inv[2][2] * z,
  ]
}

/** xyz (mm) → nearest voxel, or null outside the volume. */
export function mmToVoxel(vol: Volume, mm: ArrayLike<number>): Vec3 | null {
  const f = mmToVoxelFrac(vol.affine, mm)
  const v: Vec3 = [Math.round(f[0]), Math.round(f[1]), Math.round(f[2])]
  for (let a = 0; a < 3; a++) {
    if (!(v[a] >= 0 && v[a] < vol.dims[a])) {
      return null
    }
  }
  return v
}

/** The value at the voxel nearest to mm, 0 outside the volume. */
export function valueAtMM(vol: Volume, mm: ArrayLike<number>): number {
  const v = mmToVoxel(vol, mm)
  if (!v) {
    return 0
  }
  const val = vol.data[v[0] + vol.dims[0] * (v[1] + vol.dims[1] * v[2])]
  return Number.isFinite(val) ? val : 0
}

export function indexToVoxel(dims: Vec3, index: number): Vec3 {
  const nx = dims[0]
  const nxy = dims[0] * dims[1]
  const k = Math.floor(index / nxy)
  const rem = index - k * nxy
  const j = Math.floor(rem / nx)
  return [rem - j * nx, j, k]
}

function checkVolume(vol: Volume): void {
  const n = vol.dims[0] * vol.dims[1] * vol.dims[2]
  if (vol.data.length < n) {
    throw new Error(`volume has ${vol.data.length} values for ${vol.dims.join('×')} voxels`)
  }
}

/**
 * All clusters at threshold t (t ≥ 0) for the signs asked, sorted by |peak| (largest first),
 * then by size. Uses 26-connectivity.
 */
export function findClusters(vol: Volume, threshold: number, opts: ClusterOptions = {}): Cluster[] {
  checkVolume(vol)
  const positive = opts.positive ?? true
  const negative = opts.negative ?? true
  const t = Math.max(0, threshold)
  const [nx, ny, nz] = vol.dims
  const n = nx * ny * nz
  const data = vol.data
  const vv = voxelVolume(vol.affine)
  // 0: not in any supra-threshold set yet; 1: visited
  const seen = new Uint8Array(n)
  const stack = new Int32Array(n)
  const clusters: Cluster[] = []

  const inSet = (v: number, sign: 1 | -1): boolean =>
    sign > 0 ? v > 0 && v >= t : v < 0 && v <= -t

  for (const sign of [1, -1] as const) {
    if ((sign > 0 && !positive) || (sign < 0 && !negative)) {
      continue
    }
    seen.fill(0)
    for (let start = 0; start < n; start++) {
      if (seen[start] || !inSet(data[start], sign)) {
        continue
      }
      // flood fill from start
      let top = 0
      stack[top++] = start
      seen[start] = 1
      let size = 0
      let peakIndex = start
      let peak = data[start]
      while (top > 0) {
        const idx = stack[--top]
        size++
        const v = data[idx]
        if (sign * v > sign * peak) {
          peak = v
          peakIndex = idx
        }
        const k = Math.floor(idx / (nx * ny))
        const rem = idx - k * nx * ny
        const j = Math.floor(rem / nx)
        const i = rem - j * nx
        for (let dk = -1; dk <= 1; dk++) {
          const kk = k + dk
          if (kk < 0 || kk >= nz) continue
          for (let dj = -1; dj <= 1; dj++) {
            const jj = j + dj
            if (jj < 0 || jj >= ny) continue
            for (let di = -1; di <= 1; di++) {
              const ii = i + di
              if (ii < 0 || ii >= nx) continue
              const nb = ii + nx * (jj + ny * kk)
              if (seen[nb] || !inSet(data[nb], sign)) continue
              seen[nb] = 1
              stack[top++] = nb
            }
          }
        }
      }
      const peakVoxel = indexToVoxel(vol.dims, peakIndex)
      clusters.push({
        sign,
        peak,
        peakIndex,
        peakVoxel,
        peakMM: voxelToMM(vol.affine, peakVoxel),
        size,
        volumeMM3: size * vv,
      })
    }
  }
  clusters.sort((a, b) => Math.abs(b.peak) - Math.abs(a.peak) || b.size - a.size || a.peakIndex - b.peakIndex)
  return clusters
}

export interface Extremum {
  value: number
  index: number
  voxel: Vec3
  mm: Vec3
}

/**
 * The voxel with the largest |z| among the signs asked (both when neither is asked),
 * or null when the map is all zeros.
 */
export function globalPeak(vol: Volume, opts: ClusterOptions = {}): Extremum | null {
  checkVolume(vol)
  let positive = opts.positive ?? true
  let negative = opts.negative ?? true
  if (!positive && !negative) {
    positive = negative = true
  }
  const n = vol.dims[0] * vol.dims[1] * vol.dims[2]
  let best = -1
  let bestAbs = 0
  for (let i = 0; i < n; i++) {
    const v = vol.data[i]
    if (!Number.isFinite(v) || v === 0) continue
    if ((v > 0 && !positive) || (v < 0 && !negative)) continue
    const a = Math.abs(v)
    if (a > bestAbs) {
      bestAbs = a
      best = i
    }
  }
  if (best < 0) {
    return null
  }
  const voxel = indexToVoxel(vol.dims, best)
  return { value: vol.data[best], index: best, voxel, mm: voxelToMM(vol.affine, voxel) }
}

/** The largest |value| in the volume (0 for an empty map). */
export function maxAbs(data: ArrayLike<number>): number {
  let m = 0
  for (let i = 0; i < data.length; i++) {
    const a = Math.abs(data[i])
    if (a > m && Number.isFinite(a)) m = a
  }
  return m
}

/** The smallest and largest finite values (0 for a sign that has none: min ≤ 0 ≤ max). */
export function valueRange(data: ArrayLike<number>): { min: number; max: number } {
  let min = 0
  let max = 0
  for (let i = 0; i < data.length; i++) {
    const v = data[i]
    if (!Number.isFinite(v)) continue
    if (v > max) max = v
    else if (v < min) min = v
  }
  return { min, max }
}
