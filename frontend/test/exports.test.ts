import { describe, expect, it } from 'vitest'
import type { Cluster } from '../src/clusters'
import {
  articlesBibTeX,
  articlesCSV,
  bibAuthors,
  bibEscape,
  csvField,
  decodedBase,
  doiUrl,
  fileName,
  peaksCSV,
  pubmedUrl,
  slugify,
  toCSV,
} from '../src/exports'
import type { Article } from '../src/types'

const ARTICLES: Article[] = [
  {
    pmid: 9065511,
    title: 'Environmental knowledge is subserved by separable dorsal/ventral neural areas.',
    authors: "Aguirre GK, D'Esposito M",
    year: 1997,
    journal: 'The Journal of neuroscience : the official journal of the Society for Neuroscience',
    doi: '10.1523/JNEUROSCI.17-07-02512.1997',
    correlation: 0.41234,
  },
  {
    pmid: 12345,
    title: 'Faces, "places" & {braces}: 100% of_the $cost#\nsecond line',
    authors: 'Müller J, Ólafsson ÞB, van der Berg A',
    year: 2010,
    journal: 'Brain',
    doi: '',
    correlation: -0.05,
  },
]

describe('CSV', () => {
  it('quotes per RFC 4180', () => {
    expect(csvField('plain')).toBe('plain')
    expect(csvField('a,b')).toBe('"a,b"')
    expect(csvField('say "hi"')).toBe('"say ""hi"""')
    expect(csvField('two\nlines')).toBe('"two\nlines"')
    expect(csvField('cr\rhere')).toBe('"cr\rhere"')
    expect(csvField(3.5)).toBe('3.5')
    expect(csvField(null)).toBe('')
    expect(csvField(undefined)).toBe('')
    expect(csvField(NaN)).toBe('')
    expect(csvField('Ólafsson ÞB')).toBe('Ólafsson ÞB')
  })

  it('joins rows with CRLF', () => {
    expect(toCSV([['a', 'b'], [1, 'x,y']])).toBe('a,b\r\n1,"x,y"\r\n')
  })

  it('exports the articles with a header row', () => {
    const csv = articlesCSV(ARTICLES)
    const lines = csv.split('\r\n')
    expect(lines[0]).toBe('pmid,title,authors,year,journal,doi,correlation,pubmed_url')
    expect(lines[1]).toBe(
      '9065511,Environmental knowledge is subserved by separable dorsal/ventral neural areas.,' +
        '"Aguirre GK, D\'Esposito M",1997,The Journal of neuroscience : the official journal of the Society for Neuroscience,' +
        '10.1523/JNEUROSCI.17-07-02512.1997,0.4123,https://pubmed.ncbi.nlm.nih.gov/9065511/',
    )
    // the title with quotes, comma and a newline stays one quoted field
    expect(csv).toContain('"Faces, ""places"" & {braces}: 100% of_the $cost#\nsecond line"')
    expect(csv).toContain('"Müller J, Ólafsson ÞB, van der Berg A"')
    expect(csv.endsWith('\r\n')).toBe(true)
  })

  it('exports the peak table', () => {
    const clusters: Cluster[] = [
      { sign: 1, peak: 5.312, peakIndex: 0, peakVoxel: [0, 0, 0], peakMM: [-42, 18.4, 24], size: 12, volumeMM3: 768 },
      { sign: -1, peak: -3.456, peakIndex: 1, peakVoxel: [1, 0, 0], peakMM: [-0.2, -50, 6], size: 1, volumeMM3: 64 },
    ]
    expect(peaksCSV(clusters)).toBe(
      'sign,x_mm,y_mm,z_mm,peak_z,voxels,volume_mm3\r\n+,-42,18,24,5.31,12,768\r\n-,0,-50,6,-3.46,1,64\r\n',
    )
  })

  it('writes every cluster with the query, threshold and model version on each row', () => {
    const one: Cluster = { sign: 1, peak: 5.312, peakIndex: 0, peakVoxel: [0, 0, 0], peakMM: [-42, 18.4, 24], size: 12, volumeMM3: 768 }
    const many = Array.from({ length: 25 }, (_, i) => ({ ...one, peak: 30 - i }))
    const csv = peaksCSV(many, { query: 'faces, "places"', threshold: 3.1, modelVersion: 'nq-1' })
    const lines = csv.trimEnd().split('\r\n')
    expect(lines).toHaveLength(26)
    expect(lines[0]).toBe('query,threshold_z,model_version,sign,x_mm,y_mm,z_mm,peak_z,voxels,volume_mm3')
    expect(lines[1]).toBe('"faces, ""places""",3.1,nq-1,+,-42,18,24,30,12,768')
    expect(lines[25]).toMatch(/,6,12,768$/)
  })

  it("says value, not z, for a decoded map's peaks (in the upload's own units)", () => {
    const one: Cluster = { sign: 1, peak: 0.81234, peakIndex: 0, peakVoxel: [0, 0, 0], peakMM: [-42, 18.4, 24], size: 12, volumeMM3: 768 }
    const lines = peaksCSV([one], { query: 'beta_0001.nii', threshold: 0.245, modelVersion: 'nq-1', decoded: true }).trimEnd().split('\r\n')
    expect(lines[0]).toBe('file,threshold,model_version,sign,x_mm,y_mm,z_mm,peak_value,voxels,volume_mm3')
    expect(lines[1]).toBe('beta_0001.nii,0.245,nq-1,+,-42,18,24,0.8123,12,768')
  })

  it('names the downloads of a decoding after its file', () => {
    expect(decodedBase('zstat1.nii.gz')).toBe('decoded zstat1')
    expect(decodedBase('spmT_0001.NII')).toBe('decoded spmT_0001')
    expect(decodedBase('C:\\fakepath\\map.gz')).toBe('decoded map')
    expect(decodedBase('.nii')).toBe('decoded map')
    expect(fileName(decodedBase('zstat1.nii.gz'), '-peaks', 'csv')).toBe('text2brain-decoded-zstat1-peaks.csv')
  })
})

describe('BibTeX', () => {
  it('escapes LaTeX specials and flattens newlines, keeping non-ASCII', () => {
    expect(bibEscape('a & b % c $ d # e _ f { g } h ~ i ^ j \\ k')).toBe(
      'a \\& b \\% c \\$ d \\# e \\_ f \\{ g \\} h \\textasciitilde{} i \\textasciicircum{} j \\textbackslash{} k',
    )
    expect(bibEscape('one\ntwo\r\nthree')).toBe('one two three')
    expect(bibEscape('Ólafsson – ß')).toBe('Ólafsson – ß')
  })

  it('turns PubMed author lists into BibTeX names', () => {
    expect(bibAuthors("Aguirre GK, D'Esposito M")).toBe("Aguirre, G. K. and D'Esposito, M.")
    expect(bibAuthors('van der Berg A, Ólafsson ÞB')).toBe('van der Berg, A. and Ólafsson, Þ. B.')
    expect(bibAuthors('The fMRI Consortium')).toBe('{The fMRI Consortium}')
  })

  it('writes one @article per study with a pmid key', () => {
    const bib = articlesBibTeX(ARTICLES)
    expect(bib.match(/@article\{/g)).toHaveLength(2)
    expect(bib).toContain('@article{pmid9065511,\n')
    expect(bib).toContain("  author = {Aguirre, G. K. and D'Esposito, M.},")
    expect(bib).toContain('  title = {{Environmental knowledge is subserved by separable dorsal/ventral neural areas.}},')
    expect(bib).toContain('  year = {1997},')
    expect(bib).toContain('  doi = {10.1523/JNEUROSCI.17-07-02512.1997},')
    expect(bib).toContain('  pmid = {9065511},')
    expect(bib).toContain('@article{pmid12345,\n')
    expect(bib).toContain('  title = {{Faces, "places" \\& \\{braces\\}: 100\\% of\\_the \\$cost\\# second line}},')
    expect(bib).toContain('  author = {Müller, J. and Ólafsson, Þ. B. and van der Berg, A.},')
    // no empty doi field
    expect(bib.split('@article{pmid12345')[1]).not.toContain('doi =')
    // braces are balanced in every entry
    for (const entry of bib.split('\n@').filter(Boolean)) {
      const unescaped = entry.replace(/\\[{}]/g, '')
      const opens = (unescaped.match(/\{/g) ?? []).length
      const closes = (unescaped.match(/\}/g) ?? []).length
      expect(opens).toBe(closes)
    }
  })

  it('keeps keys unique', () => {
    const bib = articlesBibTeX([ARTICLES[0], ARTICLES[0]])
    expect(bib).toContain('@article{pmid9065511,')
    expect(bib).toContain('@article{pmid9065511_2,')
  })
})

describe('links and file names', () => {
  it('builds PubMed and DOI links', () => {
    expect(pubmedUrl(123)).toBe('https://pubmed.ncbi.nlm.nih.gov/123/')
    expect(doiUrl('10.1016/S1053-8119(03)00049-1')).toBe('https://doi.org/10.1016/S1053-8119(03)00049-1')
    expect(doiUrl('10.1000/a b')).toBe('https://doi.org/10.1000/a%20b')
  })

  it('slugifies queries for file names', () => {
    expect(slugify('Working memory')).toBe('working-memory')
    expect(slugify('  Émotion & Gedächtnis!! ')).toBe('emotion-gedachtnis')
    expect(slugify('🧠🧠')).toBe('map')
    expect(slugify('a'.repeat(100)).length).toBe(60)
    expect(fileName('working memory', '', 'png')).toBe('text2brain-working-memory.png')
    expect(fileName('working memory', '-peaks', 'csv')).toBe('text2brain-working-memory-peaks.csv')
  })
})
