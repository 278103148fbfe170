// The checks of a map file before it is uploaded to be decoded (size, and whether its first bytes
// are those of a NIfTI file or a gzip stream), and the wording of sizes and upload progress. Pure:
// the page reads the file's first bytes and gives them here.

import type { ErrorInfo } from './messages'

/** The API's limit on an upload (queryapi.MaxUploadBytes: 30 MiB, which the server calls 30 MB). */
export const MAX_UPLOAD_BYTES = 30 * 1024 * 1024

/** How many of a file's first bytes sniffNifti needs (a NIfTI-2 magic ends at byte 12, NIfTI-1's at 348). */
export const SNIFF_BYTES = 348

export type FileKind = 'gzip' | 'nifti1' | 'nifti2' | 'pair' | 'unknown'

function int32(b: Uint8Array, little: boolean): number {
  if (b.length < 4) return -1
  return new DataView(b.buffer, b.byteOffset, 4).getInt32(0, little)
}

function ascii(b: Uint8Array, start: number, length: number): string {
  return String.fromCharCode(...b.subarray(start, start + length))
}

/**
 * What a file's first bytes say it is: a gzip stream (the server inflates it and checks the rest),
 * a single-file NIfTI-1 or NIfTI-2 image, the header of a .hdr/.img pair (NIfTI or Analyze 7.5,
 * which the API cannot take: the data is in the other file), or something else.
 */
export function sniffNifti(head: Uint8Array): FileKind {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip'
  const size = [int32(head, true), int32(head, false)]
  if (size.includes(540) && head.length >= 8) {
    const magic = ascii(head, 4, 4)
    if (magic === 'n+2\0') return 'nifti2'
    if (magic === 'ni2\0') return 'pair'
  }
  if (size.includes(348)) {
    // the magic is at the end of the header: a short read cannot tell, the server will
    if (head.length < 348) return 'nifti1'
    const magic = ascii(head, 344, 4)
    if (magic === 'n+1\0') return 'nifti1'
    return 'pair'
  }
  return 'unknown'
}

/** Whether a file name is one half of a .hdr/.img pair (compressed or not). */
export function isPairName(name: string): boolean {
  return /\.(hdr|img)(\.gz)?$/i.test(name.trim())
}

/**
 * What is wrong with a file the visitor chose, before anything is sent (null: nothing the page can
 * see). head is the file's first SNIFF_BYTES bytes.
 */
export function checkUploadFile(name: string, size: number, head: Uint8Array): ErrorInfo | null {
  if (size === 0) return { code: 'empty_file', file: name }
  if (size > MAX_UPLOAD_BYTES) return { code: 'file_too_large', file: name, bytes: size }
  if (isPairName(name)) return { code: 'nifti_pair', file: name }
  const kind = sniffNifti(head)
  if (kind === 'pair') return { code: 'nifti_pair', file: name }
  if (kind === 'unknown') return { code: 'not_nifti', file: name }
  return null
}

/** A size as people read it: "812 bytes", "45 KB", "3.4 MB" (binary units, as the API's limit). */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '–'
  if (n < 1024) return `${Math.round(n)} byte${Math.round(n) === 1 ? '' : 's'}`
  if (n < 1024 * 1024) return `${Math.max(1, Math.round(n / 1024))} KB`
  const mb = n / (1024 * 1024)
  return `${mb < 10 ? mb.toFixed(1) : Math.round(mb)} MB`
}

/** "1.2 of 3.4 MB (35 %)" while a file goes up; the bytes alone when the total is unknown. */
export function uploadProgressText(loaded: number, total: number): string {
  if (!(total > 0)) return `${formatBytes(loaded)} sent`
  const pct = Math.min(100, Math.floor((100 * loaded) / total))
  const l = formatBytes(loaded)
  const t = formatBytes(total)
  // "1.2 of 3.4 MB" when both have the same unit, else each its own ("512 KB of 3.4 MB")
  const [value, unit] = l.split(' ')
  const first = unit === t.split(' ')[1] ? value : l
  return `${first} of ${t} (${pct} %)`
}

/** The name of a file for titles and messages: the base, without a browser's fake path. */
export function displayName(name: string | undefined): string {
  const base = (name ?? '').split(/[\\/]/).pop()?.trim() ?? ''
  return base || 'the uploaded map'
}
