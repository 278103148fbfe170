// Small DOM helpers: element building (text only, never innerHTML) and Blob downloads.

import type { Cluster } from './clusters'
import { formatInt, signed } from './format'
import type { TermBar } from './terms'

type Attrs = Record<string, string | number | boolean | undefined>

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Node | string | null | undefined | false)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue
    if (k === 'class') el.className = String(v)
    else if (k === 'text') el.textContent = String(v)
    else el.setAttribute(k, v === true ? '' : String(v))
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue
    el.append(typeof c === 'string' ? document.createTextNode(c) : c)
  }
  return el
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id)
  if (!el) throw new Error(`#${id} is missing from the page`)
  return el as T
}

/** Saves a Blob through a temporary <a download>. */
export function downloadBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob)
  const a = document.createElement('a')
  a.href = url
  a.download = name
  a.hidden = true
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 30000)
}

export function downloadText(text: string, name: string, type: string): void {
  downloadBlob(new Blob([text], { type }), name)
}

/** Copies text with the Clipboard API, or through a selected input as a fallback. */
export async function copyText(text: string, fallbackInput?: HTMLInputElement): Promise<boolean> {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text)
      return true
    }
  } catch {
    // fall through
  }
  if (fallbackInput) {
    fallbackInput.focus()
    fallbackInput.select()
    try {
      return document.execCommand('copy')
    } catch {
      return false
    }
  }
  return false
}

/**
 * A term's bar as a button (the panels' "Terms that shaped the map"): the bar, the term, "in the
 * query", and the weight, named by `weightWord` ("weight", "score"); the accessible name is the
 * visible text.
 */
export function termButton(t: TermBar, weightWord: string, onClick: () => void): HTMLButtonElement {
  const bar = h('span', { class: 'bar', 'aria-hidden': 'true' })
  bar.style.width = `${Math.max(2, 100 * t.fraction).toFixed(1)}%`
  const b = h(
    'button',
    { type: 'button', class: t.query ? 'term query' : 'term', title: `Map “${t.term}”` },
    bar,
    h('span', { class: 'label' }, t.term),
    t.query ? h('span', { class: 'tag' }, h('span', { class: 'vh' }, ', '), 'in the query') : null,
    h('span', { class: 'w' }, h('span', { class: 'vh' }, `, ${weightWord} `), t.label),
  )
  b.addEventListener('click', onClick)
  return b
}

/**
 * A peak table's row (the main panel's and the comparison's): sign, x, y, z, peak value (with
 * `decimals`), voxels, then `extra` cells, then the Go button.
 */
export function peakRow(c: Cluster, decimals: number, go: HTMLButtonElement, ...extra: HTMLTableCellElement[]): HTMLTableRowElement {
  return h(
    'tr',
    { class: c.sign > 0 ? 'pos' : 'neg' },
    h('td', { class: 'sign' }, h('span', { class: 'dot', 'aria-hidden': 'true' }), c.sign > 0 ? '+' : '−'),
    h('td', { class: 'num' }, signed(Math.round(c.peakMM[0]))),
    h('td', { class: 'num' }, signed(Math.round(c.peakMM[1]))),
    h('td', { class: 'num' }, signed(Math.round(c.peakMM[2]))),
    h('td', { class: 'num' }, signed(c.peak, decimals)),
    h('td', { class: 'num' }, formatInt(c.size)),
    ...extra,
    h('td', { class: 'go' }, go),
  )
}
