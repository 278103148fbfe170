// Touch on the WebGL canvases. NiiVue cancels every touchstart (preventDefault), so a swipe over a
// viewer would move its crosshair instead of scrolling the page: a trap on a phone, where the
// viewer fills the screen. Here touches never reach NiiVue: one finger scrolls the page vertically
// (touch-action: pan-y in the CSS), two fingers zoom the page, and a tap arrives as the browser's
// ordinary click (mousedown/mouseup), which NiiVue turns into a crosshair move as for a mouse.
// A horizontal one-finger drag, which the page does not scroll, can be given a meaning (onDragX).

export interface TouchOptions {
  /** Horizontal drags, in CSS pixels since the last call (e.g. to rotate the surface). */
  onDragX?: (dx: number) => void
}

export function letTouchScroll(frame: HTMLElement, canvas: HTMLCanvasElement, opts: TouchOptions = {}): void {
  const stop = (e: Event): void => {
    if (e.target === canvas) e.stopPropagation()
  }
  // capture at the frame: the event stops before the canvas's own (NiiVue's) listeners
  for (const type of ['touchstart', 'touchmove', 'touchend', 'touchcancel'] as const) {
    frame.addEventListener(type, stop, { capture: true, passive: true })
  }
  if (!opts.onDragX) return
  const onDragX = opts.onDragX
  let id: number | null = null
  let lastX = 0
  canvas.addEventListener('pointerdown', (e) => {
    if (e.pointerType !== 'touch' || !e.isPrimary) return
    id = e.pointerId
    lastX = e.clientX
  })
  canvas.addEventListener('pointermove', (e) => {
    if (e.pointerId !== id) return
    const dx = e.clientX - lastX
    lastX = e.clientX
    if (dx !== 0) onDragX(dx)
  })
  const end = (e: PointerEvent): void => {
    if (e.pointerId === id) id = null
  }
  // a vertical swipe becomes the page's scroll: the browser cancels the pointer
  canvas.addEventListener('pointerup', end)
  canvas.addEventListener('pointercancel', end)
}
