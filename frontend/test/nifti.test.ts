import { describe, expect, it } from 'vitest'
import { findClusters, type Affine } from '../src/clusters'
import { buildNifti, gunzip, isGzip, parseNifti } from '../src/nifti'

const MNI4: Affine = [
  [4, 0, 0, -90],
  [0, 4, 0, -126],
  [0, 0, 4, -72],
  [0, 0, 0, 1],
]

async function gzip(buf: ArrayBuffer): Promise<ArrayBuffer> {
  const stream = new Blob([buf]).stream().pipeThrough(new CompressionStream('gzip'))
  return await new Response(stream).arrayBuffer()
}

describe('NIfTI-1', () => {
  it('reads dims, affine and float32 data', () => {
    const dims: [number, number, number] = [4, 3, 2]
    const data = Array.from({ length: 24 }, (_, i) => i - 10.5)
    const vol = parseNifti(buildNifti(dims, data, MNI4))
    expect(vol.dims).toEqual(dims)
    expect(vol.affine).toEqual(MNI4)
    expect(vol.datatype).toBe(16)
    expect(Array.from(vol.data)).toEqual(data)
  })

  it('inflates gzip and finds clusters at the right mm', async () => {
    const dims: [number, number, number] = [46, 55, 46]
    const data = new Float32Array(46 * 55 * 46)
    data[12 + 46 * (36 + 55 * 24)] = 5.31
    data[30 + 46 * (10 + 55 * 10)] = -4.2
    const gz = await gzip(buildNifti(dims, data, MNI4))
    expect(isGzip(new Uint8Array(gz))).toBe(true)
    const vol = parseNifti(await gunzip(gz))
    const c = findClusters(vol, 3.1)
    expect(c.map((x) => x.peakMM)).toEqual([
      [-42, 18, 24],
      [30, -86, -32],
    ])
  })

  it('applies scl_slope and falls back to the qform', () => {
    const buf = buildNifti([2, 1, 1], [1, 2], MNI4)
    const v = new DataView(buf)
    v.setFloat32(112, 2, true) // slope
    v.setFloat32(116, 1, true) // inter
    v.setInt16(254, 0, true) // no sform
    v.setInt16(252, 1, true) // qform: identity rotation
    v.setFloat32(76, 1, true) // qfac
    v.setFloat32(268, -90, true)
    v.setFloat32(272, -126, true)
    v.setFloat32(276, -72, true)
    const vol = parseNifti(buf)
    expect(Array.from(vol.data)).toEqual([3, 5])
    expect(vol.affine).toEqual(MNI4)
  })

  it('rejects what is not NIfTI-1', () => {
    expect(() => parseNifti(new ArrayBuffer(10))).toThrow()
    expect(() => parseNifti(new ArrayBuffer(400))).toThrow(/sizeof_hdr/)
    const buf = buildNifti([2, 2, 2], new Float32Array(8), MNI4)
    expect(() => parseNifti(buf.slice(0, 360))).toThrow(/truncated/)
  })
})
