// A small NIfTI-1 reader for the maps the API serves (float32 46×55×46 on the 4 mm MNI grid), so
// that the page computes peaks from exactly the voxels it shows. Pure except for gunzip, which uses
// the platform's DecompressionStream (browsers and Node ≥ 18).

import type { Affine, Vec3, Volume } from './clusters'

export interface NiftiVolume extends Volume {
  /** Scaled values (scl_slope/scl_inter applied), NIfTI order. */
  data: Float32Array
  datatype: number
  sformCode: number
  qformCode: number
}

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b
}

/** Inflates gzip data (returns the input unchanged when it is not gzip). */
export async function gunzip(buf: ArrayBuffer): Promise<ArrayBuffer> {
  const bytes = new Uint8Array(buf)
  if (!isGzip(bytes)) {
    return buf
  }
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'))
  return await new Response(stream).arrayBuffer()
}

function quaternToAffine(
  b: number,
  c: number,
  d: number,
  qx: number,
  qy: number,
  qz: number,
  dx: number,
  dy: number,
  dz: number,
  qfac: number,
): Affine {
  let a = 1.0 - (b * b + c * c + d * d)
  if (a < 1e-7) {
    // special case: 180° rotation
    a = 1.0 / Math.sqrt(b * b + c * c + d * d)
    b *= a
    c *= a
    d *= a
    a = 0
  } else {
    a = Math.sqrt(a)
  }
  const xd = dx > 0 ? dx : 1
  const yd = dy > 0 ? dy : 1
  const zd = (dz > 0 ? dz : 1) * (qfac < 0 ? -1 : 1)
  return [
    [(a * a + b * b - c * c - d * d) * xd, 2 * (b * c - a * d) * yd, 2 * (b * d + a * c) * zd, qx],
    [2 * (b * c + a * d) * xd, (a * a + c * c - b * b - d * d) * yd, 2 * (c * d - a * b) * zd, qy],
    [2 * (b * d - a * c) * xd, 2 * (c * d + a * b) * yd, (a * a + d * d - c * c - b * b) * zd, qz],
    [0, 0, 0, 1],
  ]
}

/** Parses an (uncompressed) NIfTI-1 single-file image; throws on anything else. */
export function parseNifti(buf: ArrayBuffer): NiftiVolume {
  if (buf.byteLength < 352) {
    throw new Error('not a NIfTI-1 file (too short)')
  }
  const view = new DataView(buf)
  let le = true
  if (view.getInt32(0, true) !== 348) {
    if (view.getInt32(0, false) !== 348) {
      throw new Error('not a NIfTI-1 file (sizeof_hdr is not 348)')
    }
    le = false
  }
  const i16 = (o: number): number => view.getInt16(o, le)
  const f32 = (o: number): number => view.getFloat32(o, le)
  const ndim = i16(40)
  if (ndim < 1 || ndim > 7) {
    throw new Error(`bad NIfTI dim[0] ${ndim}`)
  }
  const dims: Vec3 = [Math.max(1, i16(42)), ndim >= 2 ? Math.max(1, i16(44)) : 1, ndim >= 3 ? Math.max(1, i16(46)) : 1]
  const datatype = i16(70)
  const pixdim = [0, 1, 2, 3].map((i) => f32(76 + 4 * i))
  const voxOffset = Math.max(352, Math.round(f32(108)))
  let slope = f32(112)
  let inter = f32(116)
  if (!Number.isFinite(slope) || slope === 0) {
    slope = 1
    inter = 0
  }
  if (!Number.isFinite(inter)) inter = 0
  const qformCode = i16(252)
  const sformCode = i16(254)

  let affine: Affine
  if (sformCode > 0) {
    affine = [0, 1, 2].map((r) => [0, 1, 2, 3].map((c) => f32(280 + 16 * r + 4 * c)))
    affine.push([0, 0, 0, 1])
  } else if (qformCode > 0) {
    affine = quaternToAffine(
      f32(256),
      f32(260),
      f32(264),
      f32(268),
      f32(272),
      f32(276),
      pixdim[1],
      pixdim[2],
      pixdim[3],
      pixdim[0],
    )
  } else {
    affine = [
      [pixdim[1] || 1, 0, 0, 0],
      [0, pixdim[2] || 1, 0, 0],
      [0, 0, pixdim[3] || 1, 0],
      [0, 0, 0, 1],
    ]
  }

  const n = dims[0] * dims[1] * dims[2]
  const sizes: Record<number, number> = { 2: 1, 4: 2, 8: 4, 16: 4, 64: 8, 256: 1, 512: 2, 768: 4 }
  const bytesPer = sizes[datatype]
  if (!bytesPer) {
    throw new Error(`unsupported NIfTI datatype ${datatype}`)
  }
  if (voxOffset + n * bytesPer > buf.byteLength) {
    throw new Error('NIfTI file is truncated')
  }
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) {
    const o = voxOffset + i * bytesPer
    let v: number
    switch (datatype) {
      case 2:
        v = view.getUint8(o)
        break
      case 4:
        v = view.getInt16(o, le)
        break
      case 8:
        v = view.getInt32(o, le)
        break
      case 16:
        v = view.getFloat32(o, le)
        break
      case 64:
        v = view.getFloat64(o, le)
        break
      case 256:
        v = view.getInt8(o)
        break
      case 512:
        v = view.getUint16(o, le)
        break
      default:
        v = view.getUint32(o, le)
    }
    v = v * slope + inter
    out[i] = Number.isFinite(v) ? v : 0
  }
  return { dims, data: out, affine, datatype, sformCode, qformCode }
}

/**
 * Builds a minimal NIfTI-1 float32 file (little endian, sform and qform code 0/2 as given).
 * Used by the tests and handy for debugging.
 */
export function buildNifti(dims: Vec3, data: ArrayLike<number>, affine: Affine): ArrayBuffer {
  const n = dims[0] * dims[1] * dims[2]
  const buf = new ArrayBuffer(352 + 4 * n)
  const v = new DataView(buf)
  v.setInt32(0, 348, true)
  v.setInt16(40, 3, true)
  v.setInt16(42, dims[0], true)
  v.setInt16(44, dims[1], true)
  v.setInt16(46, dims[2], true)
  for (let i = 4; i < 8; i++) v.setInt16(40 + 2 * i, 1, true)
  v.setInt16(70, 16, true)
  v.setInt16(72, 32, true)
  v.setFloat32(76, 1, true)
  for (let a = 0; a < 3; a++) {
    const col = [affine[0][a], affine[1][a], affine[2][a]]
    v.setFloat32(80 + 4 * a, Math.hypot(col[0], col[1], col[2]), true)
  }
  v.setFloat32(108, 352, true)
  v.setFloat32(112, 1, true)
  v.setInt16(254, 2, true)
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 4; c++) {
      v.setFloat32(280 + 16 * r + 4 * c, affine[r][c], true)
    }
  }
  const magic = 'n+1\0'
  for (let i = 0; i < 4; i++) v.setUint8(344 + i, magic.charCodeAt(i))
  for (let i = 0; i < n; i++) v.setFloat32(352 + 4 * i, data[i], true)
  return buf
}
