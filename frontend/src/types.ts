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
  /** The model's id in /api/v1/models (absent from older servers, and for a model not served any more). */
  model?: string
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
  model?: string
  status: 'pending'
  stage?: 'queued' | 'computing' | string
  poll: string
  created_at?: string
}

/** A term of a decoding, with the decoder's score for it (higher: more like the map). */
export interface DecodedTerm {
  term: string
  score: number
}

/** The uploaded file of a decoding, as the server received it. */
export interface UploadInfo {
  name?: string
  bytes?: number
  sha256?: string
}

/** A finished decoding of an uploaded map (POST /api/v1/decodings). */
export interface Decoding {
  id: string
  kind?: 'decoding'
  model_version?: string
  status: 'done'
  file?: UploadInfo
  related_terms?: DecodedTerm[]
  related_articles?: Article[]
  /** Peaks of the resampled map; z holds the map's value, in the upload's own units. */
  peaks?: Peak[]
  /** The upload resampled onto the model's grid (float32 46×55×46, 4 mm), as for a map. */
  map_url: string
  preview_url?: string
  surface_url?: string
  hits?: number
  created_at?: string
  compute_ms?: number
}

export interface PendingDecoding {
  id: string
  kind?: 'decoding'
  model_version?: string
  status: 'pending'
  stage?: 'queued' | 'computing' | string
  file?: UploadInfo
  poll: string
  created_at?: string
}

export interface TermsAnswer {
  query: string
  normalized_query?: string
  recognized_terms: string[]
  /** The recognised terms that the model has no map for. */
  unmapped_terms?: string[]
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
