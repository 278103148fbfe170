// Exports of the related studies (BibTeX, CSV) and of the peak table (CSV), and file names.
// Pure functions.

import type { Cluster } from './clusters'
import type { Article } from './types'

export type Cell = string | number | null | undefined

/** One CSV field per RFC 4180: quoted when it holds a quote, a comma, CR or LF; quotes doubled. */
export function csvField(value: Cell): string {
  if (value === null || value === undefined) {
    return ''
  }
  const s = typeof value === 'number' ? (Number.isFinite(value) ? String(value) : '') : String(value)
  if (/[",\r\n]/.test(s)) {
    return '"' + s.replace(/"/g, '""') + '"'
  }
  return s
}

/** Rows → CSV text, CRLF line breaks, ending with a line break. */
export function toCSV(rows: readonly (readonly Cell[])[]): string {
  return rows.map((r) => r.map(csvField).join(',')).join('\r\n') + '\r\n'
}

export function pubmedUrl(pmid: number | string): string {
  return `https://pubmed.ncbi.nlm.nih.gov/${encodeURIComponent(String(pmid))}/`
}

export function doiUrl(doi: string): string {
  // DOIs keep their slashes; everything else that is not URL-safe is escaped
  return 'https://doi.org/' + doi.trim().split('/').map(encodeURIComponent).join('/')
}

export function articlesCSV(articles: readonly Article[]): string {
  const rows: Cell[][] = [['pmid', 'title', 'authors', 'year', 'journal', 'doi', 'correlation', 'pubmed_url']]
  for (const a of articles) {
    rows.push([
      a.pmid,
      a.title,
      a.authors,
      a.year,
      a.journal,
      a.doi,
      typeof a.correlation === 'number' ? Number(a.correlation.toFixed(4)) : undefined,
      a.pmid ? pubmedUrl(a.pmid) : undefined,
    ])
  }
  return toCSV(rows)
}

/** What a peak table was made from: each CSV row carries it, so that a file says what it holds. */
export interface PeaksMeta {
  /** The query, or the decoded file's name. */
  query: string
  threshold: number
  modelVersion?: string
  /**
   * The table is of an uploaded map: its values are in the upload's units (t, z, beta…), so the
   * columns say "file", "threshold" and "peak_value" rather than z.
   */
  decoded?: boolean
}

/**
 * The clusters (all of them, as the caller gives them) as CSV: one row per cluster, each with the
 * query, the threshold and the model version first, so that the file stays one plain table.
 */
export function peaksCSV(clusters: readonly Cluster[], meta?: PeaksMeta): string {
  const decoded = meta?.decoded === true
  const head = meta ? [decoded ? 'file' : 'query', decoded ? 'threshold' : 'threshold_z', 'model_version'] : []
  const rows: Cell[][] = [[...head, 'sign', 'x_mm', 'y_mm', 'z_mm', decoded ? 'peak_value' : 'peak_z', 'voxels', 'volume_mm3']]
  const pre: Cell[] = meta ? [meta.query, Number(meta.threshold.toFixed(decoded ? 4 : 2)), meta.modelVersion ?? ''] : []
  for (const c of clusters) {
    rows.push([
      ...pre,
      c.sign > 0 ? '+' : '-',
      Math.round(c.peakMM[0]) || 0,
      Math.round(c.peakMM[1]) || 0,
      Math.round(c.peakMM[2]) || 0,
      Number(c.peak.toFixed(decoded ? 4 : 2)),
      c.size,
      Math.round(c.volumeMM3),
    ])
  }
  return toCSV(rows)
}

const BIB_SPECIALS: Record<string, string> = {
  '\\': '\\textbackslash{}',
  '{': '\\{',
  '}': '\\}',
  '&': '\\&',
  '%': '\\%',
  $: '\\$',
  '#': '\\#',
  _: '\\_',
  '~': '\\textasciitilde{}',
  '^': '\\textasciicircum{}',
}

/** Escapes LaTeX specials and flattens white space; non-ASCII is kept (UTF-8 BibTeX). */
export function bibEscape(s: string): string {
  return s
    .replace(/[\r\n\t]+/g, ' ')
    .replace(/[\\{}&%$#_~^]/g, (c) => BIB_SPECIALS[c])
    .replace(/ {2,}/g, ' ')
    .trim()
}

/** For verbatim-like fields (doi, url): only what would break the entry is escaped. */
function bibVerbatim(s: string): string {
  return s.replace(/[\r\n\t]+/g, ' ').replace(/[{}\\]/g, '').trim()
}

/**
 * PubMed-style author lists ("Aguirre GK, D'Esposito M") → BibTeX ("Aguirre, G. K. and
 * D'Esposito, M."). Names that do not look like "Surname INITIALS" are kept whole, in braces.
 */
export function bibAuthors(authors: string): string {
  const names = authors
    .split(/\s*[,;]\s*/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
  return names
    .map((name) => {
      const m = /^(.+?)\s+(\p{Lu}{1,4})$/u.exec(name)
      if (m) {
        const initials = Array.from(m[2])
          .map((c) => c + '.')
          .join(' ')
        return `${bibEscape(m[1])}, ${initials}`
      }
      return `{${bibEscape(name)}}`
    })
    .join(' and ')
}

function bibKey(a: Article, index: number, used: Set<string>): string {
  let key = a.pmid ? `pmid${a.pmid}` : `text2brain${index + 1}`
  let k = key
  let n = 2
  while (used.has(k)) {
    k = `${key}_${n++}`
  }
  key = k
  used.add(key)
  return key
}

export function articlesBibTeX(articles: readonly Article[]): string {
  const used = new Set<string>()
  const entries = articles.map((a, i) => {
    const fields: [string, string][] = []
    if (a.title) fields.push(['title', `{${bibEscape(a.title)}}`])
    if (a.authors) fields.push(['author', bibAuthors(a.authors)])
    if (a.journal) fields.push(['journal', bibEscape(a.journal)])
    if (a.year) fields.push(['year', String(a.year)])
    if (a.doi) fields.push(['doi', bibVerbatim(a.doi)])
    if (a.pmid) {
      fields.push(['pmid', String(a.pmid)])
      fields.push(['url', pubmedUrl(a.pmid)])
    }
    const body = fields.map(([k, v]) => `  ${k} = {${v}}`).join(',\n')
    return `@article{${bibKey(a, i, used)},\n${body}\n}\n`
  })
  return entries.join('\n')
}

/** A file-name-safe slug of a query: "Working memory!" → "working-memory". */
export function slugify(q: string, maxLength = 60): string {
  const s = q
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
  const cut = s.slice(0, maxLength).replace(/-+$/g, '')
  return cut || 'map'
}

export function fileName(q: string, suffix: string, ext: string): string {
  return `text2brain-${slugify(q)}${suffix}.${ext}`
}

/** The base of the downloads of a decoding: "decoded zstat1" for zstat1.nii.gz (fileName slugs it). */
export function decodedBase(fileNameOfMap: string): string {
  const stem = fileNameOfMap
    .trim()
    .split(/[\\/]/)
    .pop()!
    .replace(/\.nii(\.gz)?$/i, '')
    .replace(/\.gz$/i, '')
  return stem ? `decoded ${stem}` : 'decoded map'
}
