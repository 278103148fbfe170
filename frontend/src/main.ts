// text2brain's page: the search box (with recognised terms highlighted as one types), the map
// request with its progress, the decoding of an uploaded map (chosen or dropped, with the upload's
// progress), the viewer, the surface, peaks, related terms and studies, exports, share link,
// feedback and the API examples; with several models served, the model picker and the comparison
// of two models side by side (compare.ts).

import './style.css'
import { ApiError, fetchBinary, fetchDecoding, fetchMap, fetchModels, fetchSurface, fetchTerms, fetchVersion, isAbort, postFeedback, uploadDecoding, warm } from './api'
import { Comparison } from './compare'
import { curlExamples } from './apidoc'
import { findClusters, globalPeak, maxAbs, valueAtMM, valueRange, type Cluster, type Vec3 } from './clusters'
import { byId, copyText, downloadBlob, downloadText, h, peakRow, termButton } from './dom'
import { articlesBibTeX, articlesCSV, decodedBase, doiUrl, fileName, peaksCSV, pubmedUrl } from './exports'
import { formatInt, formatMM, formatReadout, signed } from './format'
import {
  explainDecodeError,
  explainError,
  GIVE_UP_SECONDS,
  MAX_FEEDBACK,
  MAX_QUERY,
  readyText,
  stageLabel,
  tooLongText,
  type ErrorInfo,
  type Explained,
} from './messages'
import { compareModel, evaluationDetails, evaluationText, modelById, requestModel, resolveModel, type ModelInfo, type Models } from './models'
import { gunzip, isGzip, parseNifti, type NiftiVolume } from './nifti'
import { decodingSlider, sliderMax, Z_THRESHOLD, type Display } from './scale'
import { retainSpans, segmentsFromSpans, type Span } from './spans'
import { decodedTermBars, termBars, type TermBar } from './terms'
import { codePoints, documentTitle, ellipsize, queryLength } from './text'
import { letTouchScroll } from './touch'
import type { Decoding, MapResult } from './types'
import { checkUploadFile, displayName, formatBytes, SNIFF_BYTES, uploadProgressText } from './upload'
import { readCompare, readDecoding, readModel, readQuery, searchWithDecoding, searchWithModel, searchWithQuery, shareDecodingUrl, shareUrl } from './urlstate'
import type { MapViewer } from './viewer'
import type { MeshKind, SurfaceViewer } from './surface'

const DEFAULT_QUERY = 'working memory'
const TEMPLATE_URL = '/brain/mni152_2mm.nii.gz'
const TOP_PEAKS = 20

// ---------------------------------------------------------------- elements

const tabSearch = byId<HTMLButtonElement>('tab-search')
const tabDecode = byId<HTMLButtonElement>('tab-decode')
const panelSearch = byId('panel-search')
const panelDecode = byId('panel-decode')
const dropZone = byId('drop')
const chooseFile = byId<HTMLButtonElement>('decode-choose')
const fileInput = byId<HTMLInputElement>('decode-file')
const uploadBar = byId<HTMLProgressElement>('decode-progress')
const form = byId<HTMLFormElement>('search')
const qInput = byId<HTMLTextAreaElement>('q')
const qMirror = byId('q-mirror')
const qTerms = byId('q-terms')
const qCount = byId('q-count')
const brainyButton = byId<HTMLButtonElement>('brainy')
const statusEl = byId('status')
const errorEl = byId('error')
const resultEl = byId('result')
const resultTitle = byId('result-title')
const resultMeta = byId('result-meta')
const thresholdLabel = byId('threshold-label')
const thresholdInput = byId<HTMLInputElement>('threshold')
const thresholdValue = byId<HTMLOutputElement>('threshold-value')
const showPos = byId<HTMLInputElement>('show-pos')
const showNeg = byId<HTMLInputElement>('show-neg')
const jumpMax = byId<HTMLButtonElement>('jump-max')
const downloadMap = byId<HTMLAnchorElement>('download-map')
const downloadPng = byId<HTMLButtonElement>('download-png')
const viewerCanvas = byId<HTMLCanvasElement>('viewer')
const viewerFrame = byId('viewer-frame')
const readout = byId('readout')
const toolStatus = byId('tool-status')
const surfaceCanvas = byId<HTMLCanvasElement>('surface')
const surfaceFrame = byId('surface-frame')
const surfaceMesh = byId<HTMLSelectElement>('surface-mesh')
const surfaceNote = byId('surface-note')
const peaksTable = byId<HTMLTableElement>('peaks')
const peaksCaption = byId('peaks-caption')
const peaksEmpty = byId('peaks-empty')
const peaksValueHead = byId('peaks-value-h')
const peaksValueNote = byId('peaks-value-note')
const downloadPeaks = byId<HTMLButtonElement>('download-peaks')
const termsHeading = byId('terms-h')
const termsNote = byId('terms-note')
const relatedTerms = byId('related-terms')
const articlesEl = byId('articles')
const exportBib = byId<HTMLButtonElement>('export-bibtex')
const exportCsv = byId<HTMLButtonElement>('export-csv')
const shareUrlInput = byId<HTMLInputElement>('share-url')
const shareButton = byId<HTMLButtonElement>('share')
const shareStatus = byId('share-status')
const feedbackForm = byId<HTMLFormElement>('feedback')
const feedbackText = byId<HTMLTextAreaElement>('feedback-text')
const feedbackCount = byId('feedback-count')
const feedbackSend = byId<HTMLButtonElement>('feedback-send')
const feedbackStatus = byId('feedback-status')
const apiExamples = byId('api-examples')
const versionEl = byId('version')
const modelRow = byId('model-row')
const modelSelect = byId<HTMLSelectElement>('model')
const modelFigures = byId('model-figures')
const compareToggle = byId<HTMLInputElement>('compare-toggle')
const compareSection = byId('compare')

const EXAMPLES = Array.from(document.querySelectorAll<HTMLButtonElement>('button.example')).map((b) => b.textContent?.trim() ?? '')

// ---------------------------------------------------------------- state

type State = 'idle' | 'loading' | 'ready' | 'error'

type Kind = 'map' | 'decoding'

interface Current {
  /** A query's predicted map, or an uploaded map's decoding. */
  kind: Kind
  /** The query, or the decoded file's name. */
  q: string
  result: MapResult | Decoding
  vol: NiftiVolume
  /** The map file's bytes as downloaded (what "Download map" saves). */
  file: ArrayBuffer
  nii: ArrayBuffer
  maxAbs: number
  /** The map's smallest and largest value (0 for a sign without voxels). */
  range: { min: number; max: number }
  clusters: Cluster[]
}

let current: Current | null = null
let generation = 0
let searchCtrl: AbortController | null = null
let crosshair: Vec3 | null = null
let viewer: MapViewer | null = null
let viewerInit: Promise<MapViewer> | null = null
let viewerFailed = false
let surface: SurfaceViewer | null = null
let surfaceInit: Promise<SurfaceViewer> | null = null
let surfaceCtrl: AbortController | null = null
/** The map id whose values the surface shows. */
let surfaceDrawn: string | null = null
let templatePromise: Promise<ArrayBuffer> | null = null

// The models (GET /api/v1/models; none until it answers, and then the page works as with one).
let models: Models = { default: '', models: [] }
/** The model chosen, as the URL or the picker names it ("" for the default). */
let chosenModel = readModel(location.search)
/** Whether the comparison of two models is asked for (the toggle, or &compare=1). */
let compareOn = readCompare(location.search)

function setState(s: State): void {
  document.body.dataset.state = s
}

function setDrawn(canvas: HTMLCanvasElement, drawn: boolean): void {
  canvas.dataset.drawn = drawn ? 'true' : 'false'
}

// Read-only debugging info for tests and the console.
Object.defineProperty(window, '__t2b', {
  configurable: false,
  enumerable: false,
  value: Object.freeze({
    get crosshair(): Vec3 | null {
      return crosshair ? ([...crosshair] as Vec3) : null
    },
    get mapId(): string | null {
      return current?.result.id ?? null
    },
    get clusters(): number {
      return current?.clusters.length ?? 0
    },
    get threshold(): number {
      return Number(thresholdInput.value)
    },
    get state(): string {
      return document.body.dataset.state ?? ''
    },
    get kind(): string {
      return current?.kind ?? ''
    },
    /** The shown map's model id (the API's `model`). */
    get model(): string {
      return current?.result && 'model' in current.result ? (current.result.model ?? '') : ''
    },
    /** The model a request names now ("" for the default). */
    get requestModel(): string {
      return requestedModel()
    },
  }),
})

// ---------------------------------------------------------------- the query box

let spans: Span[] = []
let spansText = ''
let termsTimer: ReturnType<typeof setTimeout> | undefined
let termsCtrl: AbortController | null = null

function renderMirror(): void {
  const text = qInput.value
  const segs = segmentsFromSpans(text, spans)
  const nodes: Node[] = segs.map((s) => (s.term ? h('mark', { class: 'term', 'data-term': s.term }, s.text) : document.createTextNode(s.text)))
  // a trailing character keeps the height of a final empty line
  nodes.push(document.createTextNode('\u200b'))
  qMirror.replaceChildren(...nodes)
}

function renderTermsLine(terms: string[] | null): void {
  if (terms === null) {
    qTerms.replaceChildren()
    return
  }
  const unique = Array.from(new Set(terms))
  if (unique.length === 0) {
    qTerms.replaceChildren(h('span', { class: 'muted' }, qInput.value.trim() ? 'No known terms yet.' : ''))
    return
  }
  qTerms.replaceChildren(
    h('span', { class: 'muted' }, 'Recognised: '),
    ...unique.flatMap((t, i) => [i > 0 ? ', ' : '', h('span', { class: 'rterm' }, t)]),
  )
}

// The box takes any length (maxlength would count UTF-16 units and cut a paste silently): the
// counter says how long the text is as the server counts it, and a text over the limit is refused
// with a message rather than cut.
function updateCounter(): void {
  const n = queryLength(qInput.value, MAX_QUERY)
  qInput.setAttribute('aria-invalid', n > MAX_QUERY ? 'true' : 'false')
  if (n >= MAX_QUERY * 0.9) {
    qCount.hidden = false
    qCount.textContent = n > MAX_QUERY ? tooLongText(n, MAX_QUERY) : `${formatInt(n)} / ${formatInt(MAX_QUERY)} characters`
    qCount.classList.toggle('full', n > MAX_QUERY)
  } else {
    qCount.hidden = true
    qCount.textContent = ''
  }
}

function onQueryInput(): void {
  const text = qInput.value
  spans = retainSpans(spansText, text, spans)
  spansText = text
  renderMirror()
  updateCounter()
  clearTimeout(termsTimer)
  termsTimer = setTimeout(() => void requestTerms(text), 250)
}

async function requestTerms(text: string): Promise<void> {
  termsCtrl?.abort()
  termsCtrl = null
  if (!text.trim() || queryLength(text, MAX_QUERY) > MAX_QUERY) {
    spans = []
    spansText = text
    renderMirror()
    renderTermsLine(null)
    return
  }
  const ctrl = new AbortController()
  termsCtrl = ctrl
  try {
    const t = await fetchTerms(text, ctrl.signal, undefined, requestedModel())
    if (ctrl.signal.aborted || qInput.value !== text) return
    spans = t.spans
    spansText = text
    renderMirror()
    renderTermsLine(t.recognized_terms)
  } catch (e) {
    if (!isAbort(e)) console.debug('text2brain: terms', e)
  }
}

function setQueryText(q: string): void {
  if (qInput.value === q) return
  qInput.value = q
  onQueryInput()
}

qInput.addEventListener('input', onQueryInput)
qInput.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault()
    form.requestSubmit()
  }
})
form.addEventListener('submit', (e) => {
  e.preventDefault()
  void search(qInput.value, 'push')
})
for (const b of document.querySelectorAll<HTMLButtonElement>('button.example')) {
  b.addEventListener('click', () => void search(b.textContent?.trim() ?? '', 'push'))
}
brainyButton.addEventListener('click', () => {
  const now = current?.q ?? qInput.value.trim()
  const choices = EXAMPLES.filter((x) => x !== now)
  const pick = choices[Math.floor(Math.random() * choices.length)] ?? DEFAULT_QUERY
  void search(pick, 'push')
})

// ---------------------------------------------------------------- status and errors

let progressTimer: ReturnType<typeof setInterval> | undefined
let progressStage = 'sending'
let progressStart = 0
/** What the stage has done so far, such as the bytes uploaded ("1.2 of 3.4 MB (35 %)"). */
let progressDetail = ''

// #status is a live region: only the stage ("Computing…", "Uploading…") is announced, when it
// changes; the bytes and seconds next to it tick in an aria-hidden span.
const statusLabel = h('span', { class: 'label' })
const statusSecs = h('span', { class: 'secs', 'aria-hidden': 'true' })
statusEl.replaceChildren(statusLabel, statusSecs)

function renderStatus(label: string, seconds?: number, detail = ''): void {
  if (statusLabel.textContent !== label) statusLabel.textContent = label
  const secs = (detail ? ` ${detail}` : '') + (seconds === undefined ? '' : `${detail ? ' ·' : ''} ${seconds} s`)
  if (statusSecs.textContent !== secs) statusSecs.textContent = secs
}

function renderProgress(): void {
  const secs = Math.floor((Date.now() - progressStart) / 1000)
  renderStatus(stageLabel(progressStage, secs), secs, progressDetail)
}

function startProgress(stage = 'sending'): void {
  stopProgress()
  progressStage = stage
  progressDetail = ''
  progressStart = Date.now()
  renderProgress()
  progressTimer = setInterval(renderProgress, 1000)
  statusEl.classList.add('busy')
}

function setStage(stage: string): void {
  progressStage = stage
  progressDetail = ''
  if (stage !== 'uploading') uploadBar.hidden = true
  renderProgress()
  comparison.firstStage(stage)
}

/** The upload's progress: in the status line and in the bar under the drop zone. */
function setUploaded(loaded: number, total: number): void {
  progressStage = 'uploading'
  progressDetail = uploadProgressText(loaded, total)
  uploadBar.hidden = false
  if (total > 0) uploadBar.value = Math.min(100, (100 * loaded) / total)
  else uploadBar.removeAttribute('value') // indeterminate
  renderProgress()
}

function stopProgress(text = ''): void {
  if (progressTimer !== undefined) clearInterval(progressTimer)
  progressTimer = undefined
  progressDetail = ''
  uploadBar.hidden = true
  statusEl.classList.remove('busy')
  renderStatus(text)
}

let retryTimer: ReturnType<typeof setInterval> | undefined

function clearError(): void {
  if (retryTimer !== undefined) clearInterval(retryTimer)
  retryTimer = undefined
  errorEl.hidden = true
  errorEl.replaceChildren()
}

/**
 * The error box: what happened and what to do, a Retry button when retrying makes sense (held
 * back for the server's Retry-After), and which map is still shown below, if any.
 */
function showError(info: ErrorInfo, retry?: () => void, explain: (e: ErrorInfo) => Explained = explainError): void {
  clearError()
  const ex = explain(info)
  const children: Node[] = [h('p', { class: 'what', title: ex.text }, ex.text)]
  if (current && !resultEl.hidden) {
    const still =
      current.kind === 'decoding'
        ? `The map below is still the decoding of “${ellipsize(current.q, 60)}”.`
        : `The map below is still the one for “${ellipsize(current.q, 60)}”.`
    children.push(h('p', { class: 'still' }, still))
  }
  if (ex.retry && retry) {
    const b = h('button', { type: 'button', class: 'retry' }, 'Retry')
    b.addEventListener('click', retry)
    if (ex.wait && ex.wait > 0) {
      // a retry before Retry-After would only be refused again
      const until = Date.now() + ex.wait * 1000
      b.disabled = true
      const tick = (): void => {
        const left = Math.ceil((until - Date.now()) / 1000)
        if (left > 0) {
          b.textContent = `Retry in ${left} s`
          return
        }
        b.textContent = 'Retry'
        b.disabled = false
        if (retryTimer !== undefined) clearInterval(retryTimer)
        retryTimer = undefined
      }
      tick()
      retryTimer = setInterval(tick, 250)
    }
    children.push(b)
  }
  errorEl.replaceChildren(...children)
  errorEl.hidden = false
}

/** On an error the previous map stays, dimmed, with the error box saying whose map it is. */
function keepPreviousResult(): void {
  resultEl.removeAttribute('aria-busy')
  if (current) {
    resultEl.classList.add('stale')
  } else {
    resultEl.hidden = true
    resultEl.classList.remove('stale')
  }
}

function toInfo(e: unknown): ErrorInfo {
  if (e instanceof ApiError) return e.toInfo()
  return { code: 'client', message: e instanceof Error ? e.message : String(e) }
}

// ---------------------------------------------------------------- history

type HistoryMode = 'push' | 'replace' | 'none'

function updateHistory(q: string, mode: HistoryMode): void {
  if (mode === 'none') return
  const model = requestedModel()
  const url = location.pathname + searchWithModel(searchWithQuery(location.search, q), model, { compare: compareOn }) + location.hash
  if (mode === 'push' && (readQuery(location.search) !== q || readModel(location.search) !== model || readDecoding(location.search) !== '')) {
    history.pushState({ q }, '', url)
  } else {
    history.replaceState({ q }, '', url)
  }
}

/** A finished decoding goes in the URL (?decoding=ID): reload, back and share links show it again. */
function updateHistoryDecoding(id: string, mode: HistoryMode): void {
  if (mode === 'none') return
  const url = location.pathname + searchWithDecoding(location.search, id) + location.hash
  if (mode === 'push' && readDecoding(location.search) !== id) {
    history.pushState({ decoding: id }, '', url)
  } else {
    history.replaceState({ decoding: id }, '', url)
  }
}

window.addEventListener('popstate', () => {
  const id = readDecoding(location.search)
  if (id) {
    setMode('decode')
    void loadDecoding(id, 'none')
    return
  }
  setMode('search')
  chosenModel = readModel(location.search)
  compareOn = readCompare(location.search)
  syncModelControls()
  const q = readQuery(location.search) || DEFAULT_QUERY
  void search(q, 'none')
})

// ---------------------------------------------------------------- search

/** Stops whatever search is under way: its answers are ignored from now on. */
function cancelSearch(): number {
  const my = ++generation
  searchCtrl?.abort()
  searchCtrl = null
  surfaceCtrl?.abort()
  comparison.cancel()
  stopProgress()
  return my
}

/** A failed search or decoding: the message, and the previous map kept (dimmed) or nothing shown. */
function failSearch(info: ErrorInfo, retry?: () => void, explain?: (e: ErrorInfo) => Explained): void {
  stopProgress()
  keepPreviousResult()
  showError(info, retry, explain)
  if (current && viewer && !viewerFailed) setDrawn(viewerCanvas, true)
  setDrawn(surfaceCanvas, !!current && surfaceDrawn === current.result.id)
  setState('error')
}

/** Reads a downloaded map file; a file that is not a NIfTI z-map is one person-readable error. */
async function decodeMap(gz: ArrayBuffer): Promise<{ nii: ArrayBuffer; vol: NiftiVolume }> {
  try {
    const nii = await gunzip(gz)
    return { nii, vol: parseNifti(nii) }
  } catch (e) {
    console.warn('text2brain: the map file could not be read:', e)
    throw new ApiError('bad_map', 0)
  }
}

async function search(raw: string, mode: 'push' | 'replace' | 'none'): Promise<void> {
  const q = raw.trim()
  if (!q) {
    cancelSearch()
    failSearch({ code: 'missing_query' })
    qInput.focus()
    return
  }
  // the box always shows the text the page answers for, the API examples use it, the URL keeps it
  setQueryText(q)
  document.title = documentTitle(q)
  renderApi(q)
  const length = queryLength(q, MAX_QUERY)
  if (length > MAX_QUERY) {
    // never a search of a cut text: the visitor shortens it
    cancelSearch()
    failSearch({ code: 'too_long', length })
    return
  }
  updateHistory(q, mode)
  const { my, ctrl } = beginLoading('sending')
  const started = Date.now()
  const model = requestedModel()
  // the other model's map is requested at once, beside this one
  const pair = comparePair()
  if (pair) comparison.start(q, pair[0], pair[1])
  else comparison.hide()
  try {
    const result = await fetchMap(q, { signal: ctrl.signal, model, onProgress: (p) => setStage(p.stage) })
    if (my !== generation) return
    await present('map', q, result, my, ctrl, started)
  } catch (e) {
    if (isAbort(e) || my !== generation) return
    console.warn('text2brain:', e)
    const info = toInfo(e)
    if (pair) comparison.failFirst(q, pair[0], pair[1], info)
    failSearch(info, () => void search(q, 'none'))
  } finally {
    if (searchCtrl === ctrl && my === generation) searchCtrl = null
  }
}

/** A new request replaces whatever was under way; the shown map dims until the new one is drawn. */
function beginLoading(stage: string): { my: number; ctrl: AbortController } {
  const my = cancelSearch()
  const ctrl = new AbortController()
  searchCtrl = ctrl
  clearError()
  setState('loading')
  setDrawn(viewerCanvas, false)
  setDrawn(surfaceCanvas, false)
  resultEl.classList.add('stale')
  resultEl.setAttribute('aria-busy', 'true')
  startProgress(stage)
  templatePromise ??= fetchBinary(TEMPLATE_URL)
  return { my, ctrl }
}

/**
 * The answer of a search or a decoding, drawn: its map file downloaded (within what is left of
 * the 60 s since started, but at least 10 s for the file itself) and read, the result rendered,
 * the viewer drawn, then the surface. Errors are the caller's.
 */
async function present(kind: Kind, q: string, result: MapResult | Decoding, my: number, ctrl: AbortController, started: number): Promise<void> {
  setStage('downloading')
  const left = Math.max(10000, started + GIVE_UP_SECONDS * 1000 - Date.now())
  const gz = await fetchBinary(result.map_url, ctrl.signal, undefined, left)
  if (my !== generation) return
  const { nii, vol } = await decodeMap(gz)
  if (my !== generation) return
  setStage('drawing')
  current = { kind, q, result, vol, file: gz, nii, maxAbs: maxAbs(vol.data), range: valueRange(vol.data), clusters: [] }
  renderResult(current)
  await drawMap(current, my)
  if (my !== generation) return
  stopProgress(readyText(result, kind === 'decoding' ? 'Decoding' : 'Map'))
  resultEl.classList.remove('stale')
  resultEl.removeAttribute('aria-busy')
  setState('ready')
  landOnHash()
  showComparison()
  void drawSurface(current, my)
}

// ---------------------------------------------------------------- decoding an uploaded map

/** A refused file, or a decoding that failed: the message, worded for a file. */
function failDecode(info: ErrorInfo, retry?: () => void): void {
  failSearch(info, retry, explainDecodeError)
}

/**
 * Decodes a file the visitor chose or dropped: checked here first (size, and whether it looks
 * like NIfTI: a wrong file is refused before it is sent), then uploaded with its progress, then
 * the decoding's stages, then drawn as a search result is.
 */
async function decodeFile(file: File): Promise<void> {
  const name = file.name
  const my = cancelSearch()
  clearError()
  let head: Uint8Array
  try {
    head = new Uint8Array(await file.slice(0, SNIFF_BYTES).arrayBuffer())
  } catch (e) {
    // a file that went away (moved, or a cloud placeholder) since it was chosen
    console.warn('text2brain: reading the file', e)
    if (my === generation) failDecode({ code: 'unreadable_file', file: name, message: `“${displayName(name)}” could not be read` })
    return
  }
  if (my !== generation) return
  const refused = checkUploadFile(name, file.size, head)
  if (refused) {
    failDecode(refused)
    return
  }
  document.title = documentTitle(`Decoding ${displayName(name)}`)
  const { my: mine, ctrl } = beginLoading('uploading')
  comparison.hide()
  setUploaded(0, file.size)
  try {
    const result = await uploadDecoding(file, name, {
      signal: ctrl.signal,
      onProgress: (p) => (p.stage === 'uploading' ? setUploaded(p.loaded ?? 0, p.total ?? 0) : setStage(p.stage)),
    })
    if (mine !== generation) return
    // the visitor's own name for the file: the server keeps the first name that the same bytes
    // came with, which may be someone else's
    const title = displayName(name)
    document.title = documentTitle(`Decoded: ${title}`)
    updateHistoryDecoding(result.id, 'push')
    await present('decoding', title, result, mine, ctrl, Date.now())
  } catch (e) {
    if (isAbort(e) || mine !== generation) return
    console.warn('text2brain: decoding', e)
    failDecode(toInfo(e), () => void decodeFile(file))
  } finally {
    if (searchCtrl === ctrl && mine === generation) searchCtrl = null
  }
}

/** A decoding by its id (a share link, reload, back and forward). */
async function loadDecoding(id: string, mode: HistoryMode): Promise<void> {
  const { my, ctrl } = beginLoading('loading')
  comparison.hide()
  const started = Date.now()
  try {
    const result = await fetchDecoding(id, { signal: ctrl.signal, onProgress: (p) => setStage(p.stage) })
    if (my !== generation) return
    const title = displayName(result.file?.name)
    document.title = documentTitle(`Decoded: ${title}`)
    updateHistoryDecoding(result.id, mode)
    await present('decoding', title, result, my, ctrl, started)
  } catch (e) {
    if (isAbort(e) || my !== generation) return
    console.warn('text2brain: decoding', e)
    failDecode(toInfo(e), () => void loadDecoding(id, 'none'))
  } finally {
    if (searchCtrl === ctrl && my === generation) searchCtrl = null
  }
}

// A link such as ?q=…#api: the browser scrolls to #api before the result above it has its height;
// once the first result is drawn, the page goes there again.
let pendingHash = location.hash.length > 1 ? location.hash.slice(1) : ''
function landOnHash(): void {
  if (!pendingHash) return
  let id = pendingHash
  pendingHash = ''
  try {
    id = decodeURIComponent(id)
  } catch {
    // kept as written
  }
  const target = document.getElementById(id)
  target?.scrollIntoView({ block: 'start' })
}

// ---------------------------------------------------------------- result

function display(): Display {
  return {
    threshold: Number(thresholdInput.value),
    showPos: showPos.checked,
    showNeg: showNeg.checked,
    max: current?.range.max ?? 0,
    min: current?.range.min ?? 0,
  }
}

/** Decimals of the threshold as shown: one for z maps, as many as an uploaded map's step needs. */
let thresholdDecimals = 1
/** The kind of map the slider is set for, and the threshold of the searches while a decoding is shown. */
let sliderKind: Kind = 'map'
let searchThreshold = Z_THRESHOLD

function showThreshold(): void {
  thresholdValue.textContent = Number(thresholdInput.value).toFixed(thresholdDecimals)
}

/**
 * The slider for a result. A query's map: it reaches the map's largest |z| (maps go well past 10)
 * and the value stays if it can. An uploaded map is in its own units: each gets its own range,
 * step and starting threshold (decodingSlider); the searches' threshold comes back after it.
 */
function fitThreshold(c: Current): void {
  if (c.kind === 'decoding') {
    if (sliderKind === 'map') searchThreshold = Number(thresholdInput.value)
    const sl = decodingSlider(c.maxAbs)
    // step before max and value: the browser snaps the value to the step
    thresholdInput.step = String(sl.step)
    thresholdInput.max = String(sl.max)
    thresholdInput.value = String(sl.value)
    thresholdDecimals = sl.decimals
  } else {
    const top = sliderMax(c.maxAbs)
    if (sliderKind === 'decoding') {
      thresholdInput.step = '0.1'
      thresholdInput.max = String(top)
      thresholdInput.value = String(searchThreshold)
      thresholdDecimals = 1
    } else if (Number(thresholdInput.max) !== top) {
      // the browser clamps a value above the new max
      thresholdInput.max = String(top)
    }
  }
  sliderKind = c.kind
  showThreshold()
  // a map's values are z-scores; an upload's are in its own units (t, z, beta…)
  const unit = c.kind === 'decoding' ? 'value' : 'z'
  thresholdLabel.textContent = `Threshold |${unit}| ≥`
  peaksValueHead.textContent = `Peak ${unit}`
  peaksValueNote.textContent = `|${unit}|`
}

/** The base of the result's download names: the query, or "decoded <file>". */
function downloadBase(c: Current): string {
  return c.kind === 'decoding' ? decodedBase(c.q) : c.q
}

function shareLink(c: Current | null): string {
  if (c?.kind === 'decoding') return shareDecodingUrl(location.origin, location.pathname, c.result.id)
  return shareUrl(location.origin, location.pathname, c?.q ?? qInput.value.trim(), requestedModel(), comparePair() !== null)
}

function renderResult(c: Current): void {
  const r = c.result
  if (c.kind === 'decoding') {
    const d = r as Decoding
    resultTitle.replaceChildren(h('span', { class: 'kind' }, 'Decoded: '), c.q)
    resultTitle.title = codePoints(c.q) > 60 ? c.q : ''
    resultMeta.replaceChildren(
      'Uploaded map',
      typeof d.file?.bytes === 'number' ? ` · ${formatBytes(d.file.bytes)}` : '',
      ' · values in the file’s own units, resampled to 4 mm MNI',
      r.model_version ? ` · model ${r.model_version}` : '',
    )
  } else {
    const m = r as MapResult
    // title: the query with its recognised terms highlighted
    const title = m.query ?? c.q
    const segs = segmentsFromSpans(title, m.recognized_spans ?? [])
    resultTitle.replaceChildren(...segs.map((s) => (s.term ? h('mark', { class: 'term' }, s.text) : document.createTextNode(s.text))))
    // a long text is clamped to a few lines (CSS); the whole of it is in the tooltip
    resultTitle.title = codePoints(title) > 60 ? title : ''
    resultMeta.replaceChildren(...mapMeta(m))
  }
  resultEl.dataset.mapId = r.id
  resultEl.dataset.kind = c.kind
  resultEl.dataset.model = c.kind === 'map' ? ((r as MapResult).model ?? '') : ''
  resultEl.hidden = false
  fitThreshold(c)

  downloadMap.href = r.map_url
  downloadMap.download = fileName(downloadBase(c), '', 'nii.gz')

  renderRelatedTerms(c)
  renderArticles(r)

  shareUrlInput.value = shareLink(c)
  shareStatus.textContent = ''
  // what the visitor typed stays (it is cleared once sent); it now goes with this map
  feedbackStatus.className = 'note'
  const whose = c.kind === 'decoding' ? `the decoding of “${ellipsize(c.q, 60)}”` : `the map of “${ellipsize(c.q, 60)}”`
  feedbackStatus.textContent = feedbackText.value.trim() ? `The map changed: your feedback will go with ${whose}.` : ''
  if (c.kind === 'decoding') renderApi(qInput.value.trim() || DEFAULT_QUERY, undefined, r.id)
  else renderApi(c.q, r.id)
  updatePeaks()
}

/** A map's line under its title: its recognised terms, and its model (by name when there are several). */
function mapMeta(m: MapResult): string[] {
  const terms = m.recognized_terms ?? []
  const info = m.model ? modelById(models, m.model) : undefined
  return [
    terms.length ? `Recognised terms: ${terms.join(', ')}` : 'No recognised terms',
    info && models.models.length > 1
      ? ` · model ${info.name}${m.model_version ? ` (${m.model_version})` : ''}`
      : m.model_version
        ? ` · model ${m.model_version}`
        : '',
  ]
}

const TERMS_NOTE = termsNote.textContent ?? ''

// The terms that shaped the map: the weights of the expanded query. The recognised terms come
// first (near 1); the terms the model added are small (0.02…), so their bars are scaled to the
// largest of them rather than to the query's terms, and each weight shows two significant digits.
// A decoding's terms are the decoder's, best first, scaled to the best score.
function renderRelatedTerms(c: Current): void {
  const decoded = c.kind === 'decoding'
  let bars: TermBar[]
  if (decoded) {
    bars = decodedTermBars((c.result as Decoding).related_terms)
    termsHeading.textContent = 'Related terms'
    termsNote.textContent =
      'The model’s terms whose predicted maps are most like this map, best first, with the decoder’s score; the bars are scaled to the best. Click a term to map it.'
  } else {
    const r = c.result as MapResult
    bars = termBars(r.related_terms, r.recognized_terms)
    termsHeading.textContent = 'Terms that shaped the map'
    termsNote.textContent = TERMS_NOTE
  }
  relatedTerms.replaceChildren(
    ...bars.map((t, i) => {
      // a decoding's term is searched as text: the search tab shows it in the box
      const b = termButton(t, decoded ? 'score' : 'weight', () => {
        setMode('search')
        void search(t.term, 'push')
      })
      const li = h('li', { class: t.query ? 'query' : 'added' }, b)
      if (!t.query && i > 0 && bars[i - 1].query) li.classList.add('first-added')
      return li
    }),
  )
  if (bars.length === 0) relatedTerms.replaceChildren(h('li', { class: 'muted' }, decoded ? 'The decoder found no related term for this map.' : 'No terms.'))
}

function renderArticles(r: MapResult | Decoding): void {
  const list = r.related_articles ?? []
  articlesEl.replaceChildren(
    ...list.map((a) => {
      const title = a.pmid ? h('a', { href: pubmedUrl(a.pmid), class: 'title', rel: 'noopener' }, a.title || `PMID ${a.pmid}`) : h('span', { class: 'title' }, a.title)
      const meta = [a.authors, a.year ? String(a.year) : '', a.journal].filter(Boolean).join(' · ')
      const links: (Node | string)[] = []
      if (typeof a.correlation === 'number') links.push(h('span', { class: 'r', title: 'Correlation with this map' }, `r = ${signed(a.correlation, 2)}`))
      if (a.pmid) links.push(h('a', { href: pubmedUrl(a.pmid), rel: 'noopener' }, 'PubMed'))
      if (a.doi) links.push(h('a', { href: doiUrl(a.doi), rel: 'noopener' }, 'DOI'))
      return h(
        'li',
        {},
        title,
        meta ? h('div', { class: 'meta' }, meta) : null,
        links.length ? h('div', { class: 'links' }, ...links.flatMap((l, i) => (i > 0 ? [' · ', l] : [l]))) : null,
      )
    }),
  )
  exportBib.disabled = list.length === 0
  exportCsv.disabled = list.length === 0
}

function renderApi(q: string, id?: string, decodingId?: string): void {
  const examples = curlExamples(location.origin, q, id, decodingId, requestedModel())
  // each command scrolls sideways on a narrow screen: focusable, so that the keyboard can scroll it
  apiExamples.replaceChildren(
    ...examples.map((ex, i) =>
      h(
        'div',
        { class: 'api-ex' },
        h('p', { class: 'api-label', id: `api-ex-${i}` }, ex.label),
        h('pre', { tabindex: '0', role: 'group', 'aria-labelledby': `api-ex-${i}` }, h('code', {}, ex.command)),
      ),
    ),
  )
}

// ---------------------------------------------------------------- peaks

function updatePeaks(): void {
  const tbody = peaksTable.tBodies[0]
  if (!current) {
    tbody.replaceChildren()
    return
  }
  const d = display()
  current.clusters = findClusters(current.vol, d.threshold, { positive: d.showPos, negative: d.showNeg })
  const shown = current.clusters.slice(0, TOP_PEAKS)
  tbody.replaceChildren(
    ...shown.map((c, i) => {
      // the name starts with the visible "Go" (WCAG 2.5.3), then says where to
      const go = h('button', { type: 'button', class: 'small go', 'aria-label': `Go to peak ${i + 1}: ${formatMM(c.peakMM)}` }, 'Go')
      go.addEventListener('click', () => goToPeak(c.peakMM))
      // an upload's values may be small (betas): as many decimals as the threshold has, two at least
      return peakRow(c, Math.max(2, thresholdDecimals), go, h('td', { class: 'num mm3' }, formatInt(c.volumeMM3)))
    }),
  )
  const n = current.clusters.length
  peaksCaption.textContent =
    n === 0
      ? ''
      : `${formatInt(n)} cluster${n === 1 ? '' : 's'} at |${current.kind === 'decoding' ? 'value' : 'z'}| ≥ ${d.threshold.toFixed(thresholdDecimals)}${n > TOP_PEAKS ? `, the ${TOP_PEAKS} strongest shown` : ''}`
  peaksEmpty.hidden = n > 0
  downloadPeaks.disabled = n === 0
}

// ---------------------------------------------------------------- viewer

function updateReadout(mm: Vec3): void {
  crosshair = mm
  const z = current ? valueAtMM(current.vol, mm) : 0
  readout.textContent = formatReadout(mm, z, current?.kind === 'decoding' ? 'value' : 'z-score')
}

function moveCrosshair(mm: Vec3): void {
  if (viewer && !viewerFailed) {
    viewer.moveTo(mm) // reports back through onLocationChange → updateReadout
  } else {
    updateReadout(mm)
  }
}

const reducedMotion = window.matchMedia?.('(prefers-reduced-motion: reduce)')

/**
 * A peak from the table, which may be far below the viewer: the crosshair moves, the viewer comes
 * into view, and the focus goes to it (the arrow keys then move on from the peak; the readout
 * says where it is).
 */
function goToPeak(mm: Vec3): void {
  moveCrosshair(mm)
  const r = viewerFrame.getBoundingClientRect()
  const inView = r.top >= 0 && r.bottom <= (window.innerHeight || document.documentElement.clientHeight)
  if (!inView) viewerFrame.scrollIntoView({ behavior: reducedMotion?.matches ? 'auto' : 'smooth', block: 'nearest' })
  if (viewer && !viewerFailed) viewerCanvas.focus({ preventScroll: true })
}

// NiiVue is a large module: it loads in parallel with the first map request, not before the page.
let viewerModulePromise: Promise<typeof import('./viewer')> | null = null
function viewerModule(): Promise<typeof import('./viewer')> {
  viewerModulePromise ??= import('./viewer')
  viewerModulePromise.catch(() => {
    viewerModulePromise = null
  })
  return viewerModulePromise
}

async function getViewer(): Promise<MapViewer> {
  viewerInit ??= (async () => {
    const [{ MapViewer }, template] = await Promise.all([viewerModule(), templatePromise ?? fetchBinary(TEMPLATE_URL)])
    const v = new MapViewer(viewerCanvas, updateReadout)
    await v.init(template)
    viewer = v
    return v
  })()
  viewerInit.catch(() => {
    viewerInit = null
    templatePromise = null
  })
  return await viewerInit
}

async function drawMap(c: Current, my: number): Promise<void> {
  let v: MapViewer
  try {
    v = await getViewer()
    if (my !== generation) return
    await v.showMap(c.nii, display())
  } catch (e) {
    if (my !== generation) return
    viewerFailed = true
    console.warn('text2brain: viewer', e)
    toolStatus.textContent = `The interactive viewer could not start (${e instanceof Error ? e.message : String(e)}). Peaks, studies and downloads still work.`
    const peak = globalPeak(c.vol)
    if (peak) updateReadout(peak.mm)
    return
  }
  viewerFailed = false
  toolStatus.textContent = ''
  if (my !== generation) return
  const peak = globalPeak(c.vol, { positive: showPos.checked, negative: showNeg.checked })
  if (peak) v.moveTo(peak.mm)
  else {
    const mm = v.crosshairMM()
    if (mm) updateReadout(mm)
  }
  setDrawn(viewerCanvas, true)
}

// "Go to maximum" explains in #tool-status why it did nothing; the note goes with the next change.
let jumpNote = false
function setJumpNote(text: string): void {
  if (!text && !jumpNote) return
  jumpNote = text !== ''
  toolStatus.textContent = text
}

let displayQueued = false
function onDisplayChange(): void {
  setJumpNote('')
  showThreshold()
  // the table is cheap (a few ms): at once; the GL redraws: at most once per frame
  updatePeaks()
  if (displayQueued) return
  displayQueued = true
  requestAnimationFrame(() => {
    displayQueued = false
    const d = display()
    if (viewer && current) viewer.setDisplay(d)
    if (surface && current) surface.setDisplay(d)
    comparison.setDisplay(d)
  })
}

thresholdInput.addEventListener('input', onDisplayChange)
showPos.addEventListener('change', onDisplayChange)
showNeg.addEventListener('change', onDisplayChange)

jumpMax.addEventListener('click', () => {
  if (!current) return
  if (!showPos.checked && !showNeg.checked) {
    setJumpNote('Positive and Negative are both unticked, so there is no maximum to go to: tick one of them.')
    return
  }
  const peak = globalPeak(current.vol, { positive: showPos.checked, negative: showNeg.checked })
  if (!peak) {
    setJumpNote(`This map has no ${showPos.checked && showNeg.checked ? 'non-zero' : showPos.checked ? 'positive' : 'negative'} value.`)
    return
  }
  setJumpNote('')
  moveCrosshair(peak.mm)
})

viewerCanvas.addEventListener('keydown', (e) => {
  if (!viewer || viewerFailed) return
  const steps: Record<string, Vec3> = {
    ArrowLeft: [-1, 0, 0],
    ArrowRight: [1, 0, 0],
    ArrowUp: [0, 1, 0],
    ArrowDown: [0, -1, 0],
    PageUp: [0, 0, 1],
    PageDown: [0, 0, -1],
  }
  const s = steps[e.key]
  if (!s) return
  e.preventDefault()
  viewer.step(s[0], s[1], s[2])
})

downloadPng.addEventListener('click', async () => {
  if (!current) return
  if (!viewer || viewerFailed) {
    toolStatus.textContent = 'The viewer is not available, so there is no picture to save.'
    return
  }
  downloadPng.disabled = true
  try {
    const blob = await viewer.snapshot(2)
    downloadBlob(blob, fileName(downloadBase(current), '', 'png'))
    toolStatus.textContent = ''
  } catch (e) {
    toolStatus.textContent = `Could not save the picture: ${e instanceof Error ? e.message : String(e)}`
  } finally {
    downloadPng.disabled = false
  }
})

// The link works by itself; with a result loaded, the page saves the very bytes it shows, under its
// own file name (a server's Content-Disposition would otherwise pick the name).
downloadMap.addEventListener('click', async (e) => {
  const c = current
  if (!c) {
    e.preventDefault()
    return
  }
  e.preventDefault()
  let bytes: ArrayBuffer = c.file
  if (!isGzip(new Uint8Array(bytes))) {
    // the browser inflated a Content-Encoding: gzip answer: compress it again for a .nii.gz
    bytes = await new Response(new Blob([bytes]).stream().pipeThrough(new CompressionStream('gzip'))).arrayBuffer()
  }
  downloadBlob(new Blob([bytes], { type: 'application/gzip' }), fileName(downloadBase(c), '', 'nii.gz'))
})

downloadPeaks.addEventListener('click', () => {
  if (!current) return
  // every cluster at the threshold (the table shows the strongest), with what they were made from
  const csv = peaksCSV(current.clusters, {
    query: current.q,
    threshold: Number(thresholdInput.value),
    modelVersion: current.result.model_version,
    decoded: current.kind === 'decoding',
  })
  downloadText(csv, fileName(downloadBase(current), '-peaks', 'csv'), 'text/csv;charset=utf-8')
})
exportBib.addEventListener('click', () => {
  if (!current) return
  downloadText(articlesBibTeX(current.result.related_articles ?? []), fileName(downloadBase(current), '-studies', 'bib'), 'application/x-bibtex;charset=utf-8')
})
exportCsv.addEventListener('click', () => {
  if (!current) return
  downloadText(articlesCSV(current.result.related_articles ?? []), fileName(downloadBase(current), '-studies', 'csv'), 'text/csv;charset=utf-8')
})

// ---------------------------------------------------------------- surface

async function getSurface(): Promise<SurfaceViewer> {
  surfaceInit ??= (async () => {
    const { SurfaceViewer } = await import('./surface')
    const s = new SurfaceViewer(surfaceCanvas)
    await s.init()
    surface = s
    return s
  })()
  surfaceInit.catch(() => {
    surfaceInit = null
  })
  return await surfaceInit
}

async function drawSurface(c: Current, my: number): Promise<void> {
  const url = c.result.surface_url
  if (!url) {
    surfaceNote.textContent = 'No surface projection for this map.'
    surface?.clearValues()
    surfaceDrawn = null
    return
  }
  surfaceCtrl?.abort()
  const ctrl = new AbortController()
  surfaceCtrl = ctrl
  try {
    const [s, values] = await Promise.all([getSurface(), fetchSurface(url, ctrl.signal)])
    if (my !== generation || ctrl.signal.aborted) return
    if (!s.nv?.meshes.length) {
      surfaceNote.textContent = 'Loading the cortical surface…'
      await s.setKind(surfaceMesh.value as MeshKind)
      if (my !== generation || ctrl.signal.aborted) return
    }
    s.setValues(values.left, values.right, display())
    surfaceNote.textContent = 'Surface projection on fsaverage5; same colours and threshold as the slices.'
    surfaceDrawn = c.result.id
    setDrawn(surfaceCanvas, true)
  } catch (e) {
    if (isAbort(e) || my !== generation) return
    console.warn('text2brain: surface', e)
    surfaceNote.textContent = `The surface view could not be loaded (${e instanceof ApiError ? explainError(e.toInfo()).text : e instanceof Error ? e.message : String(e)})`
  }
}

surfaceMesh.addEventListener('change', async () => {
  if (!surface) return
  setDrawn(surfaceCanvas, false)
  surfaceMesh.disabled = true
  try {
    await surface.setKind(surfaceMesh.value as MeshKind)
    setDrawn(surfaceCanvas, true)
  } catch (e) {
    surfaceNote.textContent = `Could not load the ${surfaceMesh.value} surface: ${e instanceof Error ? e.message : String(e)}`
  } finally {
    surfaceMesh.disabled = false
  }
})

for (const b of document.querySelectorAll<HTMLButtonElement>('button.view')) {
  b.addEventListener('click', () => surface?.view(b.dataset.view ?? 'left'))
}

// Touch: a swipe over either view scrolls the page; a tap moves the slices' crosshair; a
// sideways drag turns the surface.
letTouchScroll(viewerFrame, viewerCanvas)
letTouchScroll(surfaceFrame, surfaceCanvas, { onDragX: (dx) => surface?.rotateBy(dx * 0.6) })

// ---------------------------------------------------------------- share and feedback

shareButton.addEventListener('click', async () => {
  const url = shareUrlInput.value || shareLink(current)
  const ok = await copyText(url, shareUrlInput)
  shareStatus.textContent = ok ? 'Link copied.' : 'Copy the link above (select it and press Ctrl+C or ⌘C).'
  if (!ok) {
    shareUrlInput.focus()
    shareUrlInput.select()
  }
})

// Feedback: any length can be typed (maxlength would cut a paste silently); the counter says how
// much there is, in characters as the server counts them, and a text over the limit is refused.
function updateFeedbackCount(): void {
  const n = codePoints(feedbackText.value.trim())
  feedbackCount.textContent = `${formatInt(n)} / ${formatInt(MAX_FEEDBACK)} characters`
  feedbackCount.classList.toggle('full', n > MAX_FEEDBACK)
  feedbackText.setAttribute('aria-invalid', n > MAX_FEEDBACK ? 'true' : 'false')
}
feedbackText.addEventListener('input', updateFeedbackCount)
updateFeedbackCount()

feedbackForm.addEventListener('submit', async (e) => {
  e.preventDefault()
  if (!current) return
  const text = feedbackText.value.trim()
  const n = codePoints(text)
  if (n < 1 || n > MAX_FEEDBACK) {
    feedbackStatus.className = 'note bad'
    feedbackStatus.textContent = n < 1 ? 'Write your feedback first.' : tooLongText(n, MAX_FEEDBACK)
    feedbackText.focus()
    return
  }
  feedbackSend.disabled = true
  feedbackStatus.className = 'note'
  feedbackStatus.textContent = 'Sending…'
  try {
    await postFeedback(current.result.id, text)
    feedbackStatus.className = 'note good'
    feedbackStatus.textContent = 'Thank you — stored.'
    if (feedbackText.value.trim() === text) {
      feedbackText.value = ''
      updateFeedbackCount()
    }
  } catch (err) {
    feedbackStatus.className = 'note bad'
    feedbackStatus.textContent = explainError(toInfo(err)).text
  } finally {
    feedbackSend.disabled = false
  }
})

// ---------------------------------------------------------------- modes: search by text, decode a map

type Mode = 'search' | 'decode'

/** Shows one of the two tabs' panels; the result below stays until the next one replaces it. */
function setMode(mode: Mode, focusTab = false): void {
  const decode = mode === 'decode'
  for (const [tab, panel, on] of [
    [tabSearch, panelSearch, !decode],
    [tabDecode, panelDecode, decode],
  ] as const) {
    tab.setAttribute('aria-selected', on ? 'true' : 'false')
    // one tab stop for the tab list (the arrow keys move between its tabs)
    tab.tabIndex = on ? 0 : -1
    panel.hidden = !on
  }
  document.body.dataset.mode = mode
  if (focusTab) (decode ? tabDecode : tabSearch).focus()
}

tabSearch.addEventListener('click', () => setMode('search'))
tabDecode.addEventListener('click', () => setMode('decode'))
// The arrow keys move between the tabs (two: either arrow goes to the other one), Home and End to
// the first and the last; the tab that gets the focus is shown.
for (const tab of [tabSearch, tabDecode]) {
  tab.addEventListener('keydown', (e) => {
    const other: Mode = tab === tabSearch ? 'decode' : 'search'
    const to: Record<string, Mode> = { ArrowLeft: other, ArrowRight: other, Home: 'search', End: 'decode' }
    const mode = to[e.key]
    if (!mode) return
    e.preventDefault()
    setMode(mode, true)
  })
}

chooseFile.addEventListener('click', () => fileInput.click())
fileInput.addEventListener('change', () => {
  const file = fileInput.files?.[0]
  // cleared, so that choosing the same file again (after fixing it) is a change too
  fileInput.value = ''
  if (file) void decodeFile(file)
})

// A file dropped anywhere on the page is decoded (in either mode: a file can only be a map to
// decode); the browser would otherwise open it in place of the page. Text dragged into the search
// box is left to the browser.
let dragDepth = 0
function carriesFiles(e: DragEvent): boolean {
  return Array.from(e.dataTransfer?.types ?? []).includes('Files')
}
function endDrag(): void {
  dragDepth = 0
  document.body.classList.remove('dragging')
  dropZone.classList.remove('over')
}
document.addEventListener('dragenter', (e) => {
  if (!carriesFiles(e)) return
  e.preventDefault()
  dragDepth++
  document.body.classList.add('dragging')
})
document.addEventListener('dragover', (e) => {
  if (!carriesFiles(e)) return
  e.preventDefault()
  if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy'
  dropZone.classList.toggle('over', e.target instanceof Node && dropZone.contains(e.target))
})
document.addEventListener('dragleave', (e) => {
  if (!carriesFiles(e)) return
  dragDepth = Math.max(0, dragDepth - 1)
  if (dragDepth === 0) endDrag()
})
document.addEventListener('drop', (e) => {
  if (!carriesFiles(e)) return
  e.preventDefault()
  endDrag()
  const files = e.dataTransfer?.files
  if (!files || files.length === 0) return
  setMode('decode')
  if (files.length > 1) {
    cancelSearch()
    failDecode({ code: 'several_files' })
    return
  }
  void decodeFile(files[0])
})
window.addEventListener('blur', endDrag)

// ---------------------------------------------------------------- models

/** The model a request names: "" for the default (the request then names none). */
function requestedModel(): string {
  return requestModel(models, resolveModel(models, chosenModel))
}

/** The chosen model as the server lists it (undefined before the list, or for a name it does not serve). */
function chosenInfo(): ModelInfo | undefined {
  return modelById(models, resolveModel(models, chosenModel))
}

/** The two models of the comparison, the chosen one first; null when it is off or cannot be. */
function comparePair(): [ModelInfo, ModelInfo] | null {
  if (!compareOn || models.models.length < 2) return null
  const a = chosenInfo()
  if (!a) return null
  const b = compareModel(models, a.id)
  return b ? [a, b] : null
}

const comparison = new Comparison(compareSection, {
  template: () => {
    const tp = (templatePromise ??= fetchBinary(TEMPLATE_URL))
    tp.catch(() => {
      if (templatePromise === tp) templatePromise = null
    })
    return tp
  },
  viewerModule,
  display: () => ({ threshold: Number(thresholdInput.value), showPos: showPos.checked, showNeg: showNeg.checked }),
  onTerm: (term) => void search(term, 'push'),
})

/** After a map is drawn (or the toggle is turned on): the comparison of its text, if asked for. */
function showComparison(): void {
  const c = current
  const pair = comparePair()
  if (!c || c.kind !== 'map' || !pair) {
    comparison.hide()
    return
  }
  const r = c.result as MapResult
  if (r.model && r.model !== pair[0].id) {
    // the map shown is not the chosen model's (the choice changed while it came)
    comparison.hide()
    return
  }
  comparison.showFirst(c.q, pair[0], pair[1], { result: r, vol: c.vol, nii: c.nii, range: c.range })
}

/** The picker, the figures and the toggle as the state says; all hidden with fewer than two models. */
function syncModelControls(): void {
  compareToggle.checked = compareOn
  const many = models.models.length > 1
  modelRow.hidden = !many
  if (!many) return
  const id = resolveModel(models, chosenModel)
  const info = modelById(models, id)
  const options = models.models.map((m) => h('option', { value: m.id }, m.default ? `${m.name} (default)` : m.name))
  const UNKNOWN = '(unknown)'
  // a link's model that the server does not serve: shown as such until another is picked
  if (!info) options.push(h('option', { value: UNKNOWN, disabled: true }, `${ellipsize(chosenModel, 40)} (not served here)`))
  modelSelect.replaceChildren(...options)
  modelSelect.value = info ? info.id : UNKNOWN
  modelFigures.textContent = info ? evaluationText(info) : 'a model this server does not serve'
  modelFigures.title = info ? evaluationDetails(info) : ''
}

modelSelect.addEventListener('change', () => {
  chosenModel = modelSelect.value
  syncModelControls()
  setMode('search')
  // the text in the box, mapped by the model picked (the highlighting is the model's too)
  void requestTerms(qInput.value)
  void search(qInput.value.trim() || current?.q || DEFAULT_QUERY, 'push')
})

compareToggle.addEventListener('change', () => {
  compareOn = compareToggle.checked
  // the URL and the share link keep it; the map shown stays the same, so the history entry too
  if (!readDecoding(location.search)) {
    history.replaceState(history.state, '', location.pathname + searchWithModel(location.search, requestedModel(), { compare: compareOn }) + location.hash)
  }
  if (current) shareUrlInput.value = shareLink(current)
  if (!compareOn) {
    comparison.hide()
    return
  }
  // a map on its way starts the comparison itself once drawn
  if (document.body.dataset.state !== 'loading') showComparison()
})

function loadModels(): void {
  fetchModels()
    .then((m) => {
      models = m
      syncModelControls()
      if (current?.kind === 'map') {
        resultMeta.replaceChildren(...mapMeta(current.result as MapResult))
        shareUrlInput.value = shareLink(current)
        renderApi(current.q, current.result.id)
      }
      if (document.body.dataset.state === 'ready') showComparison()
    })
    .catch((e) => console.debug('text2brain: models', e))
}

// ---------------------------------------------------------------- start

// The skip link focuses the search box itself (a fragment link alone only scrolls in some
// browsers): the text box, or in the decode mode its file button.
document.querySelector<HTMLAnchorElement>('a.skip')?.addEventListener('click', (e) => {
  e.preventDefault()
  if (document.body.dataset.mode === 'decode') chooseFile.focus()
  else qInput.focus()
})

function start(): void {
  setState('idle')
  const decodingId = readDecoding(location.search)
  setMode(decodingId ? 'decode' : 'search')
  renderApi(readQuery(location.search) || DEFAULT_QUERY)
  syncModelControls()
  loadModels()
  warm()
    .then((b) => console.debug('text2brain: warm-up', b))
    .catch((e) => console.debug('text2brain: warm-up failed', e))
  fetchVersion()
    .then((v) => {
      const parts = [
        v.model_version ? `Model ${v.model_version}` : '',
        v.model_kind ?? '',
        v.features ? `${formatInt(v.features)} terms` : '',
        v.articles ? `${formatInt(v.articles)} studies` : '',
        v.build ? `build ${v.build}` : '',
      ].filter(Boolean)
      versionEl.textContent = parts.join(' · ')
    })
    .catch(() => {})
  const tp = fetchBinary(TEMPLATE_URL)
  templatePromise = tp
  tp.catch(() => {
    if (templatePromise === tp) templatePromise = null
  })
  void viewerModule().catch(() => {})
  if (decodingId) {
    void loadDecoding(decodingId, 'replace')
    return
  }
  const q = readQuery(location.search)
  void search(q.trim() ? q : DEFAULT_QUERY, 'replace')
}

onQueryInput()
start()
