// The cortical surface: a second NiiVue instance with fsaverage5 (both hemispheres, pial or
// inflated), sulcal depth as a gray underlay and the map's per-vertex z values as a mesh layer in
// the same colours and threshold as the slice viewer.

import { Niivue, NVMesh, NVMeshLayerDefaults, NVMeshLoaders, NVMeshUtilities, SLICE_TYPE } from '@niivue/niivue'
import { HIDDEN, NEGATIVE_CMAP, POSITIVE_CMAP, prepareContext, skipHiddenDraws } from './viewer'
import { scalesFor, type Display } from './scale'

type NVMeshLayer = NVMesh['layers'][number]

export type MeshKind = 'pial' | 'inflated'
type Hemi = 'left' | 'right'

const BASE = '/brain/fsaverage5/'
const FILES: Record<MeshKind, Record<Hemi, string>> = {
  pial: { left: 'pial_left.gii', right: 'pial_right.gii' },
  inflated: { left: 'infl_left.gii', right: 'infl_right.gii' },
}
/** Gap between the inflated hemispheres (mm). */
const GAP = 12

/**
 * Camera presets: NiiVue azimuth/elevation in degrees (checked on screen: azimuth 90 shows the left
 * hemisphere's lateral side, 270 the right one's, 180 the front).
 */
export const VIEWS: Record<string, { label: string; azimuth: number; elevation: number }> = {
  left: { label: 'Left', azimuth: 90, elevation: 0 },
  right: { label: 'Right', azimuth: 270, elevation: 0 },
  top: { label: 'Top', azimuth: 0, elevation: 90 },
  bottom: { label: 'Bottom', azimuth: 0, elevation: -90 },
  front: { label: 'Front', azimuth: 180, elevation: 0 },
  back: { label: 'Back', azimuth: 0, elevation: 0 },
}

async function getBuffer(url: string): Promise<ArrayBuffer> {
  const r = await fetch(url)
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`)
  return await r.arrayBuffer()
}

export class SurfaceViewer {
  readonly canvas: HTMLCanvasElement
  nv: Niivue | null = null
  kind: MeshKind = 'pial'
  private loaded: Partial<Record<MeshKind, Record<Hemi, NVMesh>>> = {}
  private loading: Partial<Record<MeshKind, Promise<Record<Hemi, NVMesh>>>> = {}
  private sulc: Partial<Record<Hemi, Promise<ArrayBuffer>>> = {}
  private values: Record<Hemi, Float32Array> | null = null
  private display: Display | null = null

  constructor(canvas: HTMLCanvasElement) {
    this.canvas = canvas
  }

  async init(): Promise<void> {
    if (this.nv) return
    if (!prepareContext(this.canvas)) {
      throw new Error('WebGL2 is not available in this browser.')
    }
    const nv = new Niivue({
      backColor: [0, 0, 0, 1],
      isColorbar: true,
      sliceType: SLICE_TYPE.RENDER,
      show3Dcrosshair: false,
      dragAndDropEnabled: false,
      isOrientCube: false,
      viewModeHotKey: 'F13',
      logLevel: 'warn',
      loadingText: '',
      fontColor: [0.85, 0.85, 0.85, 1],
    })
    skipHiddenDraws(nv, this.canvas)
    hideUnusedColorbars(nv)
    await nv.attachToCanvas(this.canvas)
    nv.setSliceType(SLICE_TYPE.RENDER)
    nv.scene.renderAzimuth = VIEWS.left.azimuth
    nv.scene.renderElevation = VIEWS.left.elevation
    this.nv = nv
  }

  private sulcBuffer(hemi: Hemi): Promise<ArrayBuffer> {
    if (!this.sulc[hemi]) {
      this.sulc[hemi] = getBuffer(`${BASE}sulc_${hemi}.gii`)
      this.sulc[hemi]!.catch(() => {
        delete this.sulc[hemi]
      })
    }
    return this.sulc[hemi]!
  }

  private async loadHemi(kind: MeshKind, hemi: Hemi): Promise<NVMesh> {
    const nv = this.need()
    const url = BASE + FILES[kind][hemi]
    const mesh = await NVMesh.loadFromUrl({ url, gl: nv.gl, name: FILES[kind][hemi], rgba255: [210, 210, 210, 255] })
    try {
      const layer = await NVMeshLoaders.readLayer(`sulc_${hemi}.gii`, await this.sulcBuffer(hemi), mesh, 1, 'gray', 'gray', false)
      if (layer) {
        let m = 0
        for (let i = 0; i < layer.values.length; i++) m = Math.max(m, Math.abs(layer.values[i]))
        m = m || 1
        Object.assign(layer, {
          name: 'sulc',
          colormap: 'gray',
          colormapInvert: true, // sulci (positive depth) darker
          // gyri (negative depth) light gray ≈ 210, sulci ≈ 120
          cal_min: -2 * m,
          cal_max: 3.67 * m,
          opacity: 1,
          isTransparentBelowCalMin: false,
          colorbarVisible: false,
          useNegativeCmap: false,
        })
        mesh.layers.push(layer)
      }
    } catch (e) {
      console.warn('text2brain: no sulcal depth underlay', e)
    }
    return mesh
  }

  private async meshes(kind: MeshKind): Promise<Record<Hemi, NVMesh>> {
    const have = this.loaded[kind]
    if (have) return have
    if (!this.loading[kind]) {
      this.loading[kind] = (async () => {
        const [left, right] = await Promise.all([this.loadHemi(kind, 'left'), this.loadHemi(kind, 'right')])
        if (kind === 'inflated') separate(left, right)
        const pair = { left, right }
        this.loaded[kind] = pair
        return pair
      })()
      this.loading[kind]!.catch(() => {
        delete this.loading[kind]
      })
    }
    return await this.loading[kind]!
  }

  /** Shows pial or inflated meshes (loading them on first use). */
  async setKind(kind: MeshKind): Promise<void> {
    const nv = this.need()
    const pair = await this.meshes(kind)
    this.kind = kind
    this.applyLayers(pair)
    nv.meshes = [pair.left, pair.right]
    // the separated inflated pair is wider: zoom out a little
    nv.scene.volScaleMultiplier = kind === 'inflated' ? 0.8 : 1
    nv.updateGLVolume()
  }

  /** New per-vertex values (fsaverage5, one array per hemisphere). */
  setValues(left: ArrayLike<number>, right: ArrayLike<number>, display: Display): void {
    this.values = { left: Float32Array.from(left), right: Float32Array.from(right) }
    this.display = display
    this.refresh()
  }

  setDisplay(display: Display): void {
    this.display = display
    this.refresh()
  }

  clearValues(): void {
    this.values = null
    this.refresh()
  }

  private refresh(): void {
    const nv = this.nv
    const pair = this.loaded[this.kind]
    if (!nv || !pair) return
    this.applyLayers(pair)
    nv.updateGLVolume()
  }

  /** Puts the map layer (index 1, after the sulcal depth) on both hemispheres. */
  private applyLayers(pair: Record<Hemi, NVMesh>): void {
    const nv = this.need()
    for (const hemi of ['left', 'right'] as const) {
      const mesh = pair[hemi]
      // keep the underlay (layer 0), drop any earlier map
      mesh.layers = mesh.layers.filter((l) => l.name === 'sulc')
      const vals = this.values?.[hemi]
      const d = this.display
      const nvtx = mesh.pts.length / 3
      if (vals && d && vals.length === nvtx) {
        // the slices' scales: each sign from the threshold to the map's own extreme of that sign
        const { pos, neg } = scalesFor(d)
        const layer: NVMeshLayer = {
          ...NVMeshLayerDefaults,
          name: 'map',
          values: vals,
          nFrame4D: 1, // the defaults' 0 would read values[-nvtx…]
          frame4D: 0,
          colormap: POSITIVE_CMAP,
          colormapNegative: NEGATIVE_CMAP,
          colormapInvert: false,
          useNegativeCmap: neg !== null,
          // a hidden positive side is out of reach (its colour bar is dropped: hideUnusedColorbars)
          cal_min: pos ? pos.lo : HIDDEN,
          cal_max: pos ? pos.hi : HIDDEN + 1,
          cal_minNeg: neg ? -neg.lo : -HIDDEN,
          cal_maxNeg: neg ? -neg.hi : -HIDDEN - 1,
          global_min: neg ? -neg.hi : 0,
          global_max: pos ? pos.hi : 0,
          opacity: 1,
          isTransparentBelowCalMin: true,
          isAdditiveBlend: false,
          colormapType: 0,
          // one set of colour bars for the pair: the left hemisphere's
          colorbarVisible: hemi === 'left' && (pos !== null || neg !== null),
        }
        mesh.layers.push(layer)
      } else if (vals && vals.length !== nvtx) {
        console.warn(`text2brain: ${vals.length} surface values for ${nvtx} vertices`)
      }
      mesh.updateMesh(nv.gl)
    }
  }

  /** Turns the camera about the vertical axis (degrees). */
  rotateBy(degrees: number): void {
    const nv = this.nv
    if (!nv) return
    nv.setRenderAzimuthElevation(nv.scene.renderAzimuth + degrees, nv.scene.renderElevation)
  }

  view(name: keyof typeof VIEWS | string): void {
    const v = VIEWS[name]
    if (!v || !this.nv) return
    this.nv.setRenderAzimuthElevation(v.azimuth, v.elevation)
  }

  private need(): Niivue {
    if (!this.nv) throw new Error('surface viewer not initialised')
    return this.nv
  }
}

/**
 * A mesh layer always lists its positive colour bar next to its negative one (NiiVue 0.69 hides
 * neither on its own): after each refresh of the colour maps, the bars of a side put out of reach
 * (HIDDEN) are marked invisible, so that "Positive" unticked leaves the negative bar alone.
 */
function hideUnusedColorbars(nv: Niivue): void {
  const refresh = nv.refreshColormaps.bind(nv)
  nv.refreshColormaps = (): Niivue | undefined => {
    const out = refresh()
    for (const m of nv.colormapLists) {
      if (!(Math.abs(m.min) < HIDDEN / 2 && Math.abs(m.max) < HIDDEN / 2)) m.visible = false
    }
    return out
  }
}

/** Moves two inflated hemispheres apart along x so that they do not overlap. */
function separate(left: NVMesh, right: NVMesh): void {
  const ext = (m: NVMesh): [number, number] => {
    let lo = Infinity
    let hi = -Infinity
    for (let i = 0; i < m.pts.length; i += 3) {
      lo = Math.min(lo, m.pts[i])
      hi = Math.max(hi, m.pts[i])
    }
    return [lo, hi]
  }
  const [, leftMax] = ext(left)
  const [rightMin] = ext(right)
  const shift = (m: NVMesh, dx: number): void => {
    for (let i = 0; i < m.pts.length; i += 3) m.pts[i] += dx
    const e = NVMeshUtilities.getExtents(m.pts)
    m.extentsMin = e.extentsMin
    m.extentsMax = e.extentsMax
    m.furthestVertexFromOrigin = e.mxDx
  }
  shift(left, -GAP / 2 - leftMax)
  shift(right, GAP / 2 - rightMin)
}
