// The slice viewer: NiiVue (0.69) with the MNI152 template as background and the z-map as an
// overlay (warm for z ≥ t, blue to cyan for z ≤ −t), three slices plus a 3-D render, colour bars.

import { Niivue, NVImage, SHOW_RENDER, SLICE_TYPE, MULTIPLANAR_TYPE } from '@niivue/niivue'
import type { Vec3 } from './clusters'
import { scalesFor, type Display } from './scale'

export type { Display } from './scale'

/** Out of reach of any z: hides the positive side while the negative one stays. */
export const HIDDEN = 1e6

/** Colour maps: the strongest values are the lightest on both sides (yellow, cyan). */
export const POSITIVE_CMAP = 'warm'
export const NEGATIVE_CMAP = 'blue2cyan'

/**
 * Makes a NiiVue instance skip its draws while its canvas is hidden or 0×0 (a collapsed or
 * display:none section): GL would only warn about the empty viewport. The canvas's resize observer
 * draws again once it has a size.
 */
export function skipHiddenDraws(nv: Niivue, canvas: HTMLCanvasElement): void {
  const draw = nv.drawScene.bind(nv)
  nv.drawScene = (): string | void => {
    if (canvas.width === 0 || canvas.height === 0 || canvas.clientWidth === 0 || canvas.clientHeight === 0) return
    return draw()
  }
}

/** Creates the canvas's WebGL2 context with preserveDrawingBuffer, before NiiVue asks for one. */
export function prepareContext(canvas: HTMLCanvasElement): boolean {
  const gl = canvas.getContext('webgl2', { alpha: true, antialias: true, preserveDrawingBuffer: true })
  return gl !== null
}

/**
 * Colour maps and limits of the overlay for a display: each sign from the threshold to the map's
 * own extreme of that sign; a sign that is hidden, or has nothing beyond the threshold, has no
 * colour map and so no colour bar.
 */
function configure(v: NVImage, d: Display): void {
  const { pos, neg } = scalesFor(d)
  // colormap first: setting it recalibrates cal_min/cal_max
  v.colormap = pos ? POSITIVE_CMAP : ''
  v.colormapNegative = neg ? NEGATIVE_CMAP : ''
  v.cal_min = pos ? pos.lo : HIDDEN
  v.cal_max = pos ? pos.hi : HIDDEN + 1
  v.cal_minNeg = neg ? -neg.lo : -HIDDEN
  v.cal_maxNeg = neg ? -neg.hi : -HIDDEN - 1
  v.colorbarVisible = pos !== null || neg !== null
}

export interface ViewerOptions {
  /**
   * Whether the 3-D render is drawn beside the three slices (the main viewer's layout). The
   * comparison's two small viewers leave it out: on a software renderer each render costs seconds.
   */
  render?: boolean
}

export class MapViewer {
  readonly canvas: HTMLCanvasElement
  nv: Niivue | null = null
  private overlay: NVImage | null = null
  private background: NVImage | null = null
  private onLocation: (mm: Vec3) => void
  private render: boolean

  constructor(canvas: HTMLCanvasElement, onLocation: (mm: Vec3) => void, opts: ViewerOptions = {}) {
    this.canvas = canvas
    this.onLocation = onLocation
    this.render = opts.render ?? true
  }

  /** Attaches NiiVue and loads the template (a .nii.gz file's bytes). */
  async init(template: ArrayBuffer): Promise<void> {
    if (!prepareContext(this.canvas)) {
      throw new Error('WebGL2 is not available in this browser.')
    }
    const nv = new Niivue({
      backColor: [0, 0, 0, 1],
      crosshairColor: [0.2, 0.8, 0.2, 1],
      crosshairWidth: 1,
      show3Dcrosshair: true,
      isColorbar: true,
      sliceType: SLICE_TYPE.MULTIPLANAR,
      multiplanarShowRender: this.render ? SHOW_RENDER.ALWAYS : SHOW_RENDER.NEVER,
      multiplanarLayout: MULTIPLANAR_TYPE.AUTO,
      multiplanarEqualSize: false,
      dragAndDropEnabled: false,
      isOrientationTextVisible: true,
      isRadiologicalConvention: false,
      viewModeHotKey: 'F13', // no accidental layout changes while typing
      logLevel: 'warn',
      loadingText: '',
      fontColor: [0.85, 0.85, 0.85, 1],
      tileMargin: 2,
    })
    nv.onLocationChange = (loc: unknown): void => {
      const mm = (loc as { mm?: ArrayLike<number> })?.mm
      if (mm) this.onLocation([mm[0], mm[1], mm[2]])
    }
    skipHiddenDraws(nv, this.canvas)
    await nv.attachToCanvas(this.canvas)
    const bg = await NVImage.loadFromUrl({ url: template, name: 'mni152_2mm.nii.gz', colormap: 'gray', colorbarVisible: false })
    bg.colorbarVisible = false
    // added together with the first map: every GL update is expensive on software renderers
    this.background = bg
    this.nv = nv
  }

  /** Replaces the overlay with a map (the bytes of an uncompressed .nii). */
  async showMap(nii: ArrayBuffer, display: Display): Promise<void> {
    const nv = this.need()
    const vol = await NVImage.loadFromUrl({
      url: nii.slice(0),
      name: 'map.nii',
      colormap: POSITIVE_CMAP,
      colormapNegative: NEGATIVE_CMAP,
      trustCalMinMax: false,
    })
    configure(vol, display)
    // one GL update for the swap (removeVolume + addVolume would make two or three)
    const bg = this.background ?? nv.volumes[0]
    nv.volumes = [bg, vol]
    nv.back = bg
    nv.overlays = [vol]
    this.overlay = vol
    nv.updateGLVolume()
  }

  /** Threshold and sign toggles; redraws. */
  setDisplay(d: Display): void {
    const nv = this.nv
    const v = this.overlay
    if (!nv || !v) return
    configure(v, d)
    nv.updateGLVolume()
  }


  /**
   * Moves the crosshair to mm (MNI) and reports the location (unless report is false: a viewer
   * that follows another's crosshair does not echo it back).
   */
  moveTo(mm: Vec3, report = true): void {
    const nv = this.need()
    nv.scene.crosshairPos = nv.mm2frac([mm[0], mm[1], mm[2]], 0, true)
    if (report) nv.createOnLocationChange()
    nv.drawScene()
  }

  /** Crosshair position in mm. */
  crosshairMM(): Vec3 | null {
    const nv = this.nv
    if (!nv) return null
    const mm = nv.frac2mm(nv.scene.crosshairPos, 0, true)
    return [mm[0], mm[1], mm[2]]
  }

  /** Steps the crosshair by whole template voxels (keyboard navigation). */
  step(dx: number, dy: number, dz: number): void {
    this.nv?.moveCrosshairInVox(dx, dy, dz)
  }

  /**
   * A PNG of the viewer at scale × the on-screen resolution: the canvas is redrawn at a higher
   * device pixel ratio, read, and restored.
   */
  async snapshot(scale = 2): Promise<Blob> {
    const nv = this.need()
    const canvas = this.canvas
    const base = window.devicePixelRatio || 1
    const maxSide = 8192
    const cssMax = Math.max(canvas.clientWidth, canvas.clientHeight, 1)
    const dpr = Math.min(base * scale, maxSide / cssMax)
    const prev = nv.opts.forceDevicePixelRatio
    let blob: Blob | null = null
    try {
      nv.opts.forceDevicePixelRatio = dpr
      nv.resizeListener()
      nv.drawScene()
      blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/png'))
    } finally {
      nv.opts.forceDevicePixelRatio = prev
      nv.resizeListener()
    }
    if (!blob) throw new Error('The browser could not make a PNG of the viewer.')
    return blob
  }

  private need(): Niivue {
    if (!this.nv) throw new Error('viewer not initialised')
    return this.nv
  }
}
