// The API's JSON (see /openapi.yaml).

import type { Span } from './spans'

export interface RelatedTerm {
  term: string
  weight: number
}

export interface Article {
  pmid: number
  title: string
  authors?: string
  year?: number
  journal?: string
  doi?: string
  url?: string
  correlation?: number
}

export interface Peak {
  mni: [number, number, number]
  z: number
}

export interface MapResult {
  id: string
  query: string
  normalized_query?: string
  model_version?: string
  status: 'done'
  recognized_terms?: string[]
  recognized_spans?: Span[]
  related_terms?: RelatedTerm[]
  related_articles?: Article[]
  peaks?: Peak[]
  map_url: string
  preview_url?: string
  surface_url?: string
  hits?: number
  created_at?: string
  compute_ms?: number
}

export interface Pending {
  id: string
  query?: string
  normalized_query?: string
  model_version?: string
  status: 'pending'
  stage?: 'queued' | 'computing' | string
  poll: string
  created_at?: string
}

export interface TermsAnswer {
  query: string
  normalized_query?: string
  recognized_terms: string[]
  spans: Span[]
}

export interface SurfaceValues {
  mesh: string
  left: number[]
  right: number[]
}

export interface VersionInfo {
  model_version?: string
  model_kind?: string
  build?: string
  features?: number
  articles?: number
}
