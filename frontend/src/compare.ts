// "Compare models": the same text's map from two models side by side, each panel with its model's
// name and held-out figures, its map, its top peaks and the terms that shaped it; stacked on a
// narrow screen (CSS).
//
// Each panel draws its map with the page's own viewer (viewer.ts, NiiVue), in a lighter layout:
// the three slices without the 3-D render, which on a software renderer costs seconds a frame.
// Two NiiVue canvases more are affordable because they start only once the comparison is turned
// on. A panel whose viewer cannot start (no WebGL2) shows the map's preview PNG from the API
// instead (preview_url, drawn by the server at |z| ≥ 3.1).
//
// The first panel is the chosen model, whose map the main flow fetches (the panel is handed it);
// the second is the other model, whose map the panel requests itself, in parallel with the main
// request, and polls by its own id (202 → poll) as the main flow does. The two crosshairs move
// together, and the toolbar's threshold and signs apply to both.

import { ApiError, fetchBinary, fetchMap, isAbort } from './api'
import { findClusters, globalPeak, maxAbs, valueAtMM, valueRange, type Vec3 } from './clusters'
import { h, peakRow, termButton } from './dom'
import { formatInt, formatMM, formatReadout } from './format'
import { explainError, GIVE_UP_SECONDS, stageLabel, type ErrorInfo } from './messages'
import { evaluationDetails, evaluationText, type ModelInfo } from './models'
import { gunzip, parseNifti, type NiftiVolume } from './nifti'
import type { Display } from './scale'
import { termBars } from './terms'
import type { MapResult } from './types'
import type { MapViewer } from './viewer'

/** A map ready to draw: the API's result and its volume. */
export interface LoadedMap {
  result: MapResult
  vol: NiftiVolume
  /** The uncompressed .nii (what NiiVue reads). */
  nii: ArrayBuffer
  range: { min: number; max: number }
}

/** What the toolbar says: the threshold and the signs shown (each map brings its own range). */
export type DisplayBase = Pick<Display, 'threshold' | 'showPos' | 'showNeg'>

export interface CompareDeps {
  /** The template's bytes (.nii.gz), as the main viewer has them. */
  template: () => Promise<ArrayBuffer>
  viewerModule: () => Promise<typeof import('./viewer')>
  display: () => DisplayBase
  /** A term clicked in a panel: map it. */
  onTerm: (term: string) => void
}

const TOP_PEAKS = 5
const TOP_TERMS = 8

/**
 * A map by its text and model, read: the request (polled while pending), the map file, its volume.
 * An unreadable file is ApiError('bad_map').
 */
export async function loadMap(q: string, model: string, signal: AbortSignal, onStage: (stage: string) => void): Promise<LoadedMap> {
  const started = Date.now()
  const result = await fetchMap(q, { signal, model, onProgress: (p) => onStage(p.stage) })
  onStage('downloading')
  const left = Math.max(10000, started + GIVE_UP_SECONDS * 1000 - Date.now())
  const gz = await fetchBinary(result.map_url, signal, undefined, left)
  let nii: ArrayBuffer
  let vol: NiftiVolume
  try {
    nii = await gunzip(gz)
    vol = parseNifti(nii)
  } catch (e) {
    console.warn('text2brain: compare: the map file could not be read:', e)
    throw new ApiError('bad_map', 0)
  }
  return { result, vol, nii, range: valueRange(vol.data) }
}

function withRange(d: DisplayBase, map: LoadedMap | null): Display {
  return { ...d, max: map?.range.max ?? 0, min: map?.range.min ?? 0 }
}

function toInfo(e: unknown): ErrorInfo {
  if (e instanceof ApiError) return e.toInfo()
  return { code: 'client', message: e instanceof Error ? e.message : String(e) }
}

class Panel {
  readonly root: HTMLElement
  private readonly name: HTMLElement
  private readonly figures: HTMLElement
  private readonly status: HTMLElement
  private readonly frame: HTMLElement
  readonly canvas: HTMLCanvasElement
  private readonly preview: HTMLImageElement
  private readonly readout: HTMLElement
  private readonly peaks: HTMLTableSectionElement
  private readonly peaksTable: HTMLElement
  private readonly peaksNote: HTMLElement
  private readonly terms: HTMLElement
  model: ModelInfo | null = null
  map: LoadedMap | null = null
  private viewer: MapViewer | null = null
  private viewerInit: Promise<MapViewer> | null = null
  private viewerFailed = false
  /** Bumped by every new map or state: a slower draw of an older one stops. */
  private gen = 0

  constructor(
    root: HTMLElement,
    private readonly deps: CompareDeps,
    private readonly moved: (panel: Panel, mm: Vec3) => void,
  ) {
    const q = <T extends HTMLElement>(sel: string): T => {
      const el = root.querySelector<T>(sel)
      if (!el) throw new Error(`${root.id} ${sel} is missing from the page`)
      return el
    }
    this.root = root
    this.name = q('.cmp-name')
    this.figures = q('.cmp-figures')
    this.status = q('.cmp-status')
    this.frame = q('.cmp-frame')
    this.canvas = q<HTMLCanvasElement>('canvas')
    this.preview = q<HTMLImageElement>('img.cmp-preview')
    this.readout = q('.cmp-readout')
    this.peaks = q<HTMLTableElement>('table.cmp-peaks').tBodies[0]
    this.peaksTable = q('.table-scroll')
    this.peaksNote = q('.cmp-peaks-note')
    this.terms = q('.cmp-terms')
    this.preview.addEventListener('load', () => {
      this.preview.dataset.loaded = 'true'
    })
    this.preview.addEventListener('error', () => {
      this.preview.dataset.loaded = 'false'
      this.setStatus('The preview picture could not be loaded either. Peaks and terms below still hold.', true)
    })
  }

  setModel(m: ModelInfo): void {
    this.model = m
    this.root.dataset.model = m.id
    this.name.textContent = m.name
    this.figures.textContent = evaluationText(m)
    this.figures.title = evaluationDetails(m)
  }

  private setStatus(text: string, bad = false, retry?: () => void): void {
    const nodes: (Node | string)[] = [text]
    if (retry) {
      const b = h('button', { type: 'button', class: 'small retry' }, 'Retry')
      b.addEventListener('click', retry)
      nodes.push(' ', b)
    }
    this.status.replaceChildren(...nodes)
    this.status.classList.toggle('bad', bad)
    this.status.hidden = text === ''
  }

  /** Waiting for the map: the stage in words; what was shown stays, dimmed. */
  loading(stage: string): void {
    this.root.dataset.state = 'loading'
    this.setStatus(stageLabel(stage, stage === 'sending' ? 0 : 1))
  }

  /** The map could not be had: why, in words, and a Retry button when retrying makes sense. */
  failed(info: ErrorInfo, retry?: () => void): void {
    this.gen++
    this.map = null
    this.root.dataset.state = 'error'
    delete this.root.dataset.mapId
    this.canvas.dataset.drawn = 'false'
    const ex = explainError(info)
    this.setStatus(ex.text, true, ex.retry ? retry : undefined)
    this.peaks.replaceChildren()
    this.peaksTable.hidden = true
    this.peaksNote.textContent = ''
    this.terms.replaceChildren()
    this.readout.textContent = ''
    this.frame.hidden = true
  }

  private async getViewer(): Promise<MapViewer> {
    this.viewerInit ??= (async () => {
      const [{ MapViewer }, template] = await Promise.all([this.deps.viewerModule(), this.deps.template()])
      const v = new MapViewer(this.canvas, (mm) => this.moved(this, mm), { render: false })
      await v.init(template)
      this.viewer = v
      return v
    })()
    this.viewerInit.catch(() => {
      this.viewerInit = null
    })
    return await this.viewerInit
  }

  /** Draws a map (its peaks and terms at once, the viewer when ready), the crosshair at mm. */
  async show(map: LoadedMap, at: Vec3 | null): Promise<void> {
    const my = ++this.gen
    const already = this.map?.result.id === map.result.id && this.canvas.dataset.drawn === 'true'
    this.map = map
    this.root.dataset.state = 'ready'
    this.root.dataset.mapId = map.result.id
    this.root.dataset.modelVersion = map.result.model_version ?? ''
    this.frame.hidden = false
    this.setStatus('')
    this.renderTerms()
    this.updatePeaks()
    if (already) {
      if (at) this.moveTo(at)
      return
    }
    this.canvas.dataset.drawn = 'false'
    if (this.viewerFailed) {
      this.showPreview()
      return
    }
    try {
      const v = await this.getViewer()
      if (my !== this.gen) return
      await v.showMap(map.nii, withRange(this.deps.display(), map))
      if (my !== this.gen) return
      this.preview.hidden = true
      this.canvas.hidden = false
      const p = at ?? globalPeak(map.vol)?.mm ?? null
      if (p) {
        v.moveTo(p, false)
        this.setReadout(p)
      }
      this.canvas.dataset.drawn = 'true'
    } catch (e) {
      if (my !== this.gen) return
      console.warn('text2brain: compare viewer', e)
      this.viewerFailed = true
      this.showPreview()
    }
  }

  /** The server's picture of the map, where the viewer cannot run. */
  private showPreview(): void {
    const url = this.map?.result.preview_url
    this.canvas.hidden = true
    if (!url) {
      this.setStatus('The interactive viewer could not start in this browser, and this map has no preview picture. Peaks and terms below still hold.', true)
      return
    }
    this.setStatus('The interactive viewer could not start in this browser: this is the server’s picture of the map, at |z| ≥ 3.1.')
    this.preview.dataset.loaded = 'false'
    this.preview.alt = `The map from ${this.model?.name ?? 'this model'}, three slices at |z| ≥ 3.1`
    this.preview.src = url
    this.preview.hidden = false
  }

  setReadout(mm: Vec3): void {
    if (!this.map) return
    this.readout.textContent = formatReadout(mm, valueAtMM(this.map.vol, mm))
  }

  /** Moves this panel's crosshair (without echoing it to the other panel). */
  moveTo(mm: Vec3): void {
    if (this.viewer && !this.viewerFailed && this.map) this.viewer.moveTo(mm, false)
    this.setReadout(mm)
  }

  setDisplay(d: DisplayBase): void {
    this.updatePeaks()
    if (this.viewer && this.map) this.viewer.setDisplay(withRange(d, this.map))
  }

  private updatePeaks(): void {
    const map = this.map
    if (!map) return
    const d = this.deps.display()
    const clusters = findClusters(map.vol, d.threshold, { positive: d.showPos, negative: d.showNeg })
    this.peaks.replaceChildren(
      ...clusters.slice(0, TOP_PEAKS).map((c, i) => {
        const go = h('button', { type: 'button', class: 'small go', 'aria-label': `Go to peak ${i + 1} of ${this.model?.name ?? 'this model'}: ${formatMM(c.peakMM)}` }, 'Go')
        go.addEventListener('click', () => {
          this.moveTo(c.peakMM)
          this.moved(this, c.peakMM)
        })
        return peakRow(c, 2, go)
      }),
    )
    const n = clusters.length
    // no header over an empty table: the note says why there is no row
    this.peaksTable.hidden = n === 0
    this.peaksNote.textContent =
      n === 0
        ? `No cluster at |z| ≥ ${d.threshold.toFixed(1)}${maxAbs(map.vol.data) > 0 ? `: this map reaches |z| ${maxAbs(map.vol.data).toFixed(1)}; lower the threshold to see its peaks.` : '.'}`
        : `${formatInt(n)} cluster${n === 1 ? '' : 's'} at |z| ≥ ${d.threshold.toFixed(1)}${n > TOP_PEAKS ? `, the ${TOP_PEAKS} strongest shown` : ''}.`
  }

  private renderTerms(): void {
    const r = this.map?.result
    if (!r) return
    const bars = termBars(r.related_terms, r.recognized_terms).slice(0, TOP_TERMS)
    if (bars.length === 0) {
      this.terms.replaceChildren(h('li', { class: 'muted' }, 'No terms.'))
      return
    }
    this.terms.replaceChildren(
      ...bars.map((t) => {
        const b = termButton(t, 'weight', () => this.deps.onTerm(t.term))
        return h('li', { class: t.query ? 'query' : 'added' }, b)
      }),
    )
  }

  /** Stops whatever draw is under way (the shown map stays). */
  cancel(): void {
    this.gen++
  }
}

/** The comparison section: its heading and its two panels. */
export class Comparison {
  private readonly section: HTMLElement
  private readonly heading: HTMLElement
  readonly panels: [Panel, Panel]
  /** The text and models shown: q, then the two models' ids. */
  private key = ''
  private ctrl: AbortController | null = null
  /** Where both crosshairs are: the strongest peak of the two maps, until one is moved. */
  private crosshair: Vec3 | null = null
  /** Whether the visitor moved the crosshairs (a click, a peak's Go): they then stay there. */
  private moved = false
  private readonly deps: CompareDeps

  constructor(section: HTMLElement, deps: CompareDeps) {
    this.section = section
    this.deps = deps
    const heading = section.querySelector<HTMLElement>('.cmp-title')
    const grid = section.querySelector<HTMLElement>('.compare-grid')
    const template = section.querySelector<HTMLTemplateElement>('template#cmp-panel')
    if (!heading || !grid || !template) throw new Error('#compare is incomplete')
    // the two panels, made from the one template
    const roots = ['cmp-a', 'cmp-b'].map((id) => {
      const root = (template.content.firstElementChild as HTMLElement).cloneNode(true) as HTMLElement
      root.id = id
      const name = root.querySelector<HTMLElement>('.cmp-name')
      if (name) {
        name.id = `${id}-name`
        root.setAttribute('aria-labelledby', name.id)
      }
      grid.append(root)
      return root
    })
    this.heading = heading
    const moved = (from: Panel, mm: Vec3): void => {
      this.crosshair = mm
      this.moved = true
      for (const p of this.panels) {
        if (p === from) p.setReadout(mm)
        else p.moveTo(mm)
      }
    }
    this.panels = [new Panel(roots[0], deps, moved), new Panel(roots[1], deps, moved)]
  }

  get visible(): boolean {
    return !this.section.hidden
  }

  /** The text and models the section is for, as one string. */
  private keyOf(q: string, a: ModelInfo, b: ModelInfo): string {
    return JSON.stringify([q, a.id, b.id])
  }

  /**
   * A new comparison: q from the models a (the chosen one, whose map the caller brings with
   * showFirst or failFirst) and b (requested here at once).
   */
  start(q: string, a: ModelInfo, b: ModelInfo): void {
    this.cancel()
    this.key = this.keyOf(q, a, b)
    this.crosshair = null
    this.moved = false
    this.section.hidden = false
    this.heading.replaceChildren('Side by side: “', h('span', { class: 'cmp-q' }, q), '”')
    this.heading.title = q
    const [pa, pb] = this.panels
    pa.setModel(a)
    pb.setModel(b)
    pa.loading('sending')
    this.loadSecond(q, b)
  }

  private loadSecond(q: string, b: ModelInfo): void {
    const pb = this.panels[1]
    this.ctrl?.abort()
    const ctrl = new AbortController()
    this.ctrl = ctrl
    const key = this.key
    pb.loading('sending')
    // the default model's request names none (the same URL, and cache entry, as the main flow's)
    const model = b.default ? '' : b.id
    loadMap(q, model, ctrl.signal, (stage) => {
      if (this.key === key && !ctrl.signal.aborted) pb.loading(stage)
    })
      .then((map) => {
        if (this.key !== key || ctrl.signal.aborted) return
        return pb.show(map, this.crosshair).then(() => this.settle())
      })
      .catch((e) => {
        if (isAbort(e) || this.key !== key || ctrl.signal.aborted) return
        console.warn('text2brain: compare', e)
        pb.failed(toInfo(e), () => this.loadSecond(q, b))
      })
      .finally(() => {
        if (this.ctrl === ctrl) this.ctrl = null
      })
  }

  /**
   * Both crosshairs at the same place as each map is drawn: where the visitor put them, else at
   * the strongest peak of the maps drawn (of the signs shown), which reads how the other model
   * maps the same place (a weak model's own peak would often be noise).
   */
  private settle(): void {
    let at = this.moved ? this.crosshair : null
    if (!at) {
      const d = this.deps.display()
      let best = 0
      for (const p of this.panels) {
        const peak = p.map ? globalPeak(p.map.vol, { positive: d.showPos, negative: d.showNeg }) : null
        if (peak && Math.abs(peak.value) > best) {
          best = Math.abs(peak.value)
          at = peak.mm
        }
      }
    }
    if (!at) return
    this.crosshair = at
    for (const p of this.panels) if (p.map) p.moveTo(at)
  }

  /** Whether the section shows q from these models (else a new start is needed). */
  shows(q: string, a: ModelInfo, b: ModelInfo): boolean {
    return this.visible && this.key === this.keyOf(q, a, b)
  }

  /** The chosen model's map, as the main flow has it. */
  showFirst(q: string, a: ModelInfo, b: ModelInfo, map: LoadedMap): void {
    if (!this.shows(q, a, b)) this.start(q, a, b)
    void this.panels[0].show(map, this.crosshair).then(() => this.settle())
  }

  /** The chosen model's map could not be had (the main flow's error, for its panel). */
  failFirst(q: string, a: ModelInfo, b: ModelInfo, info: ErrorInfo): void {
    if (!this.shows(q, a, b)) return
    this.panels[0].failed(info)
  }

  setDisplay(d: DisplayBase): void {
    if (!this.visible) return
    for (const p of this.panels) p.setDisplay(d)
  }

  /** Stops the second panel's request and any draw under way; what is shown stays. */
  cancel(): void {
    this.ctrl?.abort()
    this.ctrl = null
    this.key = ''
    for (const p of this.panels) p.cancel()
  }

  /** The main flow's stage, for the first panel while it waits for the main map. */
  firstStage(stage: string): void {
    if (this.visible && this.key && this.panels[0].root.dataset.state === 'loading') this.panels[0].loading(stage)
  }

  hide(): void {
    this.cancel()
    this.section.hidden = true
  }
}
