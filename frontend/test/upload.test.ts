import { describe, expect, it } from 'vitest'
import { buildNifti } from '../src/nifti'
import { checkUploadFile, displayName, formatBytes, isPairName, MAX_UPLOAD_BYTES, sniffNifti, SNIFF_BYTES, uploadProgressText } from '../src/upload'

const ID: number[][] = [
  [4, 0, 0, -90],
  [0, 4, 0, -126],
  [0, 0, 4, -72],
  [0, 0, 0, 1],
]
const nifti1 = (): Uint8Array => new Uint8Array(buildNifti([2, 2, 2], [0, 1, 2, 3, 4, 5, 6, 7], ID)).subarray(0, SNIFF_BYTES)
const text = (s: string): Uint8Array => new TextEncoder().encode(s)

function nifti2Head(magic: string): Uint8Array {
  const b = new Uint8Array(SNIFF_BYTES)
  new DataView(b.buffer).setInt32(0, 540, true)
  for (let i = 0; i < 4; i++) b[4 + i] = magic.charCodeAt(i)
  return b
}

describe('sniffNifti', () => {
  it('knows gzip, NIfTI-1 and NIfTI-2 single files', () => {
    expect(sniffNifti(new Uint8Array([0x1f, 0x8b, 8, 0]))).toBe('gzip')
    expect(sniffNifti(nifti1())).toBe('nifti1')
    expect(sniffNifti(nifti2Head('n+2\0'))).toBe('nifti2')
  })

  it('reads big-endian headers too', () => {
    const b = nifti1().slice()
    new DataView(b.buffer).setInt32(0, 348, false)
    expect(sniffNifti(b)).toBe('nifti1')
  })

  it('tells a .hdr of a pair (NIfTI or Analyze) from a single file', () => {
    const b = nifti1().slice()
    b.set(text('ni1\0'), 344)
    expect(sniffNifti(b)).toBe('pair')
    b.set([0, 0, 0, 0], 344) // Analyze 7.5: no magic
    expect(sniffNifti(b)).toBe('pair')
    expect(sniffNifti(nifti2Head('ni2\0'))).toBe('pair')
  })

  it('says unknown for anything else', () => {
    expect(sniffNifti(text('x,y,z\n1,2,3\n'))).toBe('unknown')
    expect(sniffNifti(text('%PDF-1.7'))).toBe('unknown')
    expect(sniffNifti(new Uint8Array())).toBe('unknown')
    expect(sniffNifti(new Uint8Array([0x1f]))).toBe('unknown')
  })
})

describe('checkUploadFile', () => {
  it('takes a NIfTI or gzip file within the limit', () => {
    expect(checkUploadFile('zstat1.nii.gz', 1_000_000, new Uint8Array([0x1f, 0x8b]))).toBeNull()
    expect(checkUploadFile('spmT_0001.nii', 902_000, nifti1())).toBeNull()
    // the name does not matter when the content is a NIfTI file
    expect(checkUploadFile('download', 902_000, nifti1())).toBeNull()
    expect(checkUploadFile('max.nii', MAX_UPLOAD_BYTES, nifti1())).toBeNull()
  })

  it('refuses an empty file, a file over 30 MB, a pair, and what is not NIfTI', () => {
    expect(checkUploadFile('a.nii', 0, new Uint8Array())).toEqual({ code: 'empty_file', file: 'a.nii' })
    expect(checkUploadFile('big.nii', MAX_UPLOAD_BYTES + 1, nifti1())).toEqual({ code: 'file_too_large', file: 'big.nii', bytes: MAX_UPLOAD_BYTES + 1 })
    expect(checkUploadFile('con_0001.img', 900_000, new Uint8Array(SNIFF_BYTES))).toEqual({ code: 'nifti_pair', file: 'con_0001.img' })
    expect(checkUploadFile('con_0001.hdr.gz', 900, new Uint8Array([0x1f, 0x8b]))).toEqual({ code: 'nifti_pair', file: 'con_0001.hdr.gz' })
    expect(checkUploadFile('notes.txt', 12, text('hello, brain'))).toEqual({ code: 'not_nifti', file: 'notes.txt' })
    // a text file named .nii is still not NIfTI
    expect(checkUploadFile('fake.nii', 12, text('hello, brain'))?.code).toBe('not_nifti')
  })

  it('knows the names of pairs', () => {
    expect(isPairName('x.HDR')).toBe(true)
    expect(isPairName('x.img.gz')).toBe(true)
    expect(isPairName('x.nii.gz')).toBe(false)
    expect(isPairName('image.nii')).toBe(false)
  })
})

describe('sizes and progress', () => {
  it('formats sizes in binary units, as the limit is', () => {
    expect(formatBytes(0)).toBe('0 bytes')
    expect(formatBytes(1)).toBe('1 byte')
    expect(formatBytes(812)).toBe('812 bytes')
    expect(formatBytes(46_000)).toBe('45 KB')
    expect(formatBytes(3.4 * 1024 * 1024)).toBe('3.4 MB')
    expect(formatBytes(MAX_UPLOAD_BYTES)).toBe('30 MB')
    expect(formatBytes(45.2 * 1024 * 1024)).toBe('45 MB')
    expect(formatBytes(NaN)).toBe('–')
  })

  it('says how much of the file has gone', () => {
    const MB = 1024 * 1024
    expect(uploadProgressText(1.2 * MB, 3.4 * MB)).toBe('1.2 of 3.4 MB (35 %)')
    expect(uploadProgressText(512 * 1024, 3.4 * MB)).toBe('512 KB of 3.4 MB (14 %)')
    expect(uploadProgressText(0, 90_000)).toBe('0 bytes of 88 KB (0 %)')
    expect(uploadProgressText(3.4 * MB, 3.4 * MB)).toBe('3.4 of 3.4 MB (100 %)')
    expect(uploadProgressText(2048, 0)).toBe('2 KB sent')
  })

  it('names a file by its base', () => {
    expect(displayName('C:\\fakepath\\zstat1.nii.gz')).toBe('zstat1.nii.gz')
    expect(displayName('  ')).toBe('the uploaded map')
    expect(displayName(undefined)).toBe('the uploaded map')
  })
})
