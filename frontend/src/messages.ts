// What the visitor reads when something goes wrong: the API's error code (or a client-side one:
// network, timeout, http) → a sentence that says what happened and what to do. Pure.

export interface ErrorInfo {
  code: string
  /** HTTP status (0 for a network failure). */
  status?: number
  /** The API's own sentence, when it gave one. */
  message?: string
  /** Seconds, from Retry-After. */
  retryAfter?: number
  /** For a text over the limit found by the page: its length in characters. */
  length?: number
  /** For a file refused by the page: its name and size. */
  file?: string
  bytes?: number
}

export interface Explained {
  text: string
  /** Whether a Retry button makes sense. */
  retry: boolean
  /** Whether to point at the example queries. */
  examples: boolean
  /** Seconds to wait before a retry makes sense (Retry-After): the Retry button waits as long. */
  wait?: number
}

function sentence(s: string | undefined): string {
  // a long query quoted in the server's sentence is shortened: the visitor has it in the box
  const t = shortenQuoted((s ?? '').trim())
  if (!t) return ''
  return /[.!?…]$/.test(t) ? t : t + '.'
}

import { ellipsize, shortenQuoted } from './text'
import { formatBytes, MAX_UPLOAD_BYTES } from './upload'

export const MAX_QUERY = 2000
export const MAX_FEEDBACK = 1000
export const GIVE_UP_SECONDS = 60

export function explainError(e: ErrorInfo): Explained {
  const server = sentence(e.message)
  const wait = e.retryAfter && e.retryAfter > 0 ? Math.ceil(e.retryAfter) : 0
  switch (e.code) {
    case 'missing_query':
      return { text: 'Type some text to map first, or pick one of the examples.', retry: false, examples: true }
    case 'invalid_query':
      return { text: `${server || 'This text cannot be mapped.'} Rephrase it and try again.`, retry: false, examples: true }
    case 'too_long':
      if (e.length !== undefined) return { text: tooLongText(e.length, MAX_QUERY), retry: false, examples: false }
      return {
        text: `${server || 'The text is too long.'} Shorten it to at most ${MAX_QUERY.toLocaleString('en-US')} characters and try again.`,
        retry: false,
        examples: false,
      }
    case 'too_large':
      return { text: `${server || 'The request is too large.'} Shorten the text and try again.`, retry: false, examples: false }
    case 'no_known_terms':
      return {
        // the server's sentence already ends with what to type instead: no second suggestion
        text: /\btry\b/i.test(server) ? server : `${server || 'None of these words is in the vocabulary.'} Try other words — brain functions, tasks or regions — or one of the examples.`,
        retry: false,
        examples: true,
      }
    case 'no_mapped_terms':
      return {
        // the model knows these words but has no brain map for any of them
        text: /\btry\b/i.test(server) ? server : `${server || 'The model knows these words but has no brain map for them.'} Try other words, or one of the examples.`,
        retry: false,
        examples: true,
      }
    case 'busy':
      return {
        text: `${server || 'Many maps are being computed right now.'} Wait ${wait ? `${wait} second${wait === 1 ? '' : 's'}` : 'a few seconds'} and try again.`,
        retry: true,
        examples: false,
      }
    case 'request_timeout':
    case 'headers_too_large':
    case 'bad_request':
      return { text: `${server || 'The server could not read the request.'} Reload the page and try again.`, retry: true, examples: false }
    case 'prediction_failed':
      return { text: `${server || 'The map could not be computed.'} Try again, or try other words.`, retry: true, examples: true }
    case 'rate_limited':
      return {
        text: `Too many requests right now. Wait ${wait ? `${wait} second${wait === 1 ? '' : 's'}` : 'a few seconds'} and try again.`,
        retry: true,
        examples: false,
        wait: wait || undefined,
      }
    case 'unavailable':
      return {
        text: `${server || 'The service is temporarily unavailable.'} Retry in a few seconds.`,
        retry: true,
        examples: false,
        wait: wait || undefined,
      }
    case 'misconfigured':
      return {
        text: 'The service is misconfigured on our side, so it cannot answer now. Please try again later.',
        retry: true,
        examples: false,
      }
    case 'not_found':
      return { text: `${server || 'This map was not found.'} Search again.`, retry: true, examples: false }
    case 'unknown_model':
      // a link naming a model this server does not serve (any more)
      return {
        text: `${server || 'This server does not serve the model the link names.'} Pick one in the Model list and try again.`,
        retry: false,
        examples: false,
      }
    case 'invalid_wait':
    case 'invalid_json':
    case 'method_not_allowed':
      return { text: `${server || 'The page sent a request the server did not accept.'} Reload the page and try again.`, retry: true, examples: false }
    case 'invalid_feedback':
      return { text: `${server || 'The feedback was not accepted.'} Write 1 to ${MAX_FEEDBACK.toLocaleString('en-US')} characters and send it again.`, retry: false, examples: false }
    case 'network':
      return {
        text: 'The server could not be reached. Check your connection (you may be offline) and retry.',
        retry: true,
        examples: false,
      }
    case 'timeout':
      return {
        text: `No map after ${GIVE_UP_SECONDS} seconds, so the page stopped waiting. The server may still be computing it: retry in a moment.`,
        retry: true,
        examples: false,
      }
    case 'bad_map':
      return { text: 'The map file could not be read. Retry in a moment.', retry: true, examples: false }
    case 'bad_response':
      return { text: 'The server sent an answer the page could not read. Retry in a moment.', retry: true, examples: false }
    default: {
      const status = e.status ? ` (HTTP ${e.status})` : ''
      return { text: `${server || `Something went wrong${status}.`} Retry in a moment.`, retry: true, examples: false }
    }
  }
}

const UPLOAD_LIMIT = formatBytes(MAX_UPLOAD_BYTES)
const CHOOSE_NIFTI = 'Choose a statistical map saved as NIfTI (.nii or .nii.gz), in MNI space.'

/** A file name in quotes for a message, shortened: the file is the visitor's, they know it. */
function quoted(name: string | undefined): string {
  const n = (name ?? '').trim()
  return n ? `“${ellipsize(n, 60)}”` : 'The file'
}

/**
 * The message for an error of a decoding (an upload, or a share link's decoding): the file's
 * problems say what to do with the file; the rest is worded as for a map.
 */
export function explainDecodeError(e: ErrorInfo): Explained {
  const server = sentence(e.message)
  const no = { retry: false, examples: false }
  switch (e.code) {
    case 'empty_file':
      return { text: `${quoted(e.file)} is empty. ${CHOOSE_NIFTI}`, ...no }
    case 'unreadable_file':
      return { text: `${quoted(e.file)} could not be read. Choose it again (a file in a synced cloud folder may need to be downloaded first).`, ...no }
    case 'several_files':
      return { text: 'Drop one file at a time: the page decodes one map.', ...no }
    case 'file_too_large':
      return {
        text: `${quoted(e.file)} is ${formatBytes(e.bytes ?? 0)}; the limit is ${UPLOAD_LIMIT}. Compress it (.nii.gz) or resample it to 2 mm voxels, and try again.`,
        ...no,
      }
    case 'too_large':
      return { text: `${server || `The file is larger than ${UPLOAD_LIMIT}, the most this service takes.`} Compress it (.nii.gz) or resample it to 2 mm voxels, and try again.`, ...no }
    case 'nifti_pair':
      return {
        text: `${quoted(e.file)} is one half of a .hdr/.img pair, which the page cannot send. Convert it to a single .nii or .nii.gz file (nibabel, FSL or SPM do), and try again.`,
        ...no,
      }
    case 'not_nifti':
      return { text: `${quoted(e.file)} is not a NIfTI file. ${CHOOSE_NIFTI}`, ...no }
    case 'invalid_upload':
      return { text: `${server || 'The server could not read the upload.'} ${CHOOSE_NIFTI}`, retry: true, examples: false }
    case 'invalid_nifti':
      return { text: `${server || 'The file is not a NIfTI image the service can read.'} ${CHOOSE_NIFTI}`, ...no }
    case 'no_transform':
      return {
        text: `${server || 'The image has no spatial transform (neither sform nor qform).'} Save the map again with its transform to MNI space (your analysis software writes it), and try again.`,
        ...no,
      }
    case 'not_a_volume':
      return { text: `${server || 'The image is not a 3D volume.'} Choose a 3D statistical map (of a 4D file, the first volume is decoded).`, ...no }
    case 'empty_map':
      return { text: `${server || 'The map is zero or constant inside the brain.'} Choose a statistical map (t, z, beta…) with values that vary in the brain.`, ...no }
    case 'outside_brain':
      return { text: `${server || 'The map has no value inside the brain.'} Check that it is in MNI space (not in a subject’s own space), and try again.`, ...no }
    case 'decoding_failed':
      return { text: `${server || 'The map could not be decoded.'} Retry, or try another map.`, retry: true, examples: false }
    case 'not_found':
      return { text: `${server || 'This decoding was not found.'} Upload the map again.`, ...no }
    case 'timeout':
      return {
        text: `No decoding after ${GIVE_UP_SECONDS} seconds, so the page stopped waiting. The server may still be computing it: retry in a moment.`,
        retry: true,
        examples: false,
      }
    case 'busy':
      return {
        text: `${server || 'Many maps are being computed right now.'} Wait ${e.retryAfter && e.retryAfter > 0 ? `${Math.ceil(e.retryAfter)} second${Math.ceil(e.retryAfter) === 1 ? '' : 's'}` : 'a few seconds'} and try again.`,
        retry: true,
        examples: false,
        wait: e.retryAfter && e.retryAfter > 0 ? Math.ceil(e.retryAfter) : undefined,
      }
    case 'network':
      return {
        text: 'The server could not be reached, so the map was not sent. Check your connection (you may be offline) and retry.',
        retry: true,
        examples: false,
      }
    default: {
      const ex = explainError(e)
      return { ...ex, examples: false }
    }
  }
}

/** "The text is 2,013 characters; the limit is 2,000 — shorten it." */
export function tooLongText(length: number, limit: number): string {
  return `The text is ${length.toLocaleString('en-US')} characters; the limit is ${limit.toLocaleString('en-US')} — shorten it.`
}

/**
 * What the page is doing while a map comes: the stage alone (announced when it changes), without
 * the seconds (shown next to it, not announced).
 */
export function stageLabel(stage: string | undefined, seconds: number): string {
  switch (stage) {
    case 'queued':
      return 'Queued…'
    case 'computing':
      return 'Computing…'
    case 'downloading':
      return 'Downloading the map…'
    case 'drawing':
      return 'Drawing…'
    case 'reading':
      return 'Reading the file…'
    case 'uploading':
      return 'Uploading…'
    case 'checking':
      // every byte is sent: the server reads and checks the file, then holds the answer briefly
      return 'Checking the map…'
    case 'loading':
      return 'Loading the decoding…'
    default:
      // the first request is held by the server while it computes: no stage is known yet
      return seconds < 1 ? 'Sending the query…' : 'Computing…'
  }
}

/** Progress line while a map is computed: "Computing… 5 s". */
export function progressText(stage: string | undefined, seconds: number): string {
  return `${stageLabel(stage, seconds)} ${seconds} s`
}

/**
 * The line once the map is drawn: "Map ready (from the cache)." for an answer the server had
 * already (hits counts the answers from its cache), else the time the model took. what names the
 * thing ready ("Map", "Decoding").
 */
export function readyText(r: { hits?: number; compute_ms?: number }, what = 'Map'): string {
  if (typeof r.hits === 'number' && r.hits > 0) return `${what} ready (from the cache).`
  if (typeof r.compute_ms === 'number' && r.compute_ms > 0) return `${what} ready · computed in ${(r.compute_ms / 1000).toFixed(1)} s.`
  return `${what} ready.`
}
