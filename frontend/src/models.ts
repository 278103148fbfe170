// The models the server serves (GET /api/v1/models): reading the list, which one a page's state
// names, which one a comparison shows beside it, and the held-out figures in words. Pure.

export interface Baseline {
  name: string
  pearson_r: number
  recall_at_10: number
}

/** How well a model predicts the maps of articles it was not trained on. */
export interface Evaluation {
  split?: string
  articles?: number
  pearson_r: number
  recall_at_10: number
  compared?: Baseline[]
}

export interface ModelInfo {
  id: string
  name: string
  kind?: string
  model_version?: string
  description?: string
  default: boolean
  features?: number
  mapped_features?: number
  /** null for a model fitted on every article (NeuroQuery), which has no held-out figures. */
  evaluation: Evaluation | null
}

export interface Models {
  /** The id of the model a request without `model` gets. */
  default: string
  /** The default first. */
  models: ModelInfo[]
}

function isNumber(x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x)
}

function readEvaluation(e: unknown): Evaluation | null {
  const v = e as Partial<Evaluation> | null
  if (!v || typeof v !== 'object' || !isNumber(v.pearson_r) || !isNumber(v.recall_at_10)) return null
  return {
    split: typeof v.split === 'string' ? v.split : undefined,
    articles: isNumber(v.articles) ? v.articles : undefined,
    pearson_r: v.pearson_r,
    recall_at_10: v.recall_at_10,
    compared: Array.isArray(v.compared)
      ? v.compared.filter((c): c is Baseline => !!c && typeof c.name === 'string' && isNumber(c.pearson_r) && isNumber(c.recall_at_10))
      : [],
  }
}

/**
 * The answer of /api/v1/models, checked: models without an id are dropped, each has a name (its
 * id when the server gave none), the default comes first (by `default`, else the answer's
 * `default`, else the first listed). An unreadable answer is an empty list: the page then works as
 * with one model.
 */
export function parseModels(body: unknown): Models {
  const b = body as { default?: unknown; models?: unknown } | null
  const raw = b && typeof b === 'object' && Array.isArray(b.models) ? b.models : []
  const seen = new Set<string>()
  const list: ModelInfo[] = []
  for (const m of raw as Partial<ModelInfo>[]) {
    if (!m || typeof m !== 'object' || typeof m.id !== 'string' || !m.id || seen.has(m.id)) continue
    seen.add(m.id)
    list.push({
      id: m.id,
      name: typeof m.name === 'string' && m.name.trim() ? m.name.trim() : m.id,
      kind: typeof m.kind === 'string' ? m.kind : undefined,
      model_version: typeof m.model_version === 'string' ? m.model_version : undefined,
      description: typeof m.description === 'string' ? m.description : undefined,
      default: m.default === true,
      features: isNumber(m.features) ? m.features : undefined,
      mapped_features: isNumber(m.mapped_features) ? m.mapped_features : undefined,
      evaluation: readEvaluation(m.evaluation),
    })
  }
  let def = list.findIndex((m) => m.default)
  if (def < 0) def = list.findIndex((m) => m.id === b?.default)
  if (def < 0) def = 0
  const models = list.length ? [list[def], ...list.filter((_, i) => i !== def)].map((m, i) => ({ ...m, default: i === 0 })) : []
  return { default: models[0]?.id ?? '', models }
}

/** The model a request should name: "" for the default (the request then names none). */
export function requestModel(models: Models, chosen: string): string {
  return chosen && chosen !== models.default ? chosen : ''
}

/**
 * The model the page shows for the model named in its URL: that one if the server serves it
 * (by id or by model version), the default when the URL names none. A name the server does not
 * serve is kept as it is (the request then gets the server's unknown_model message); before the
 * list has come (no models), the URL's name is kept too.
 */
export function resolveModel(models: Models, fromUrl: string): string {
  const name = fromUrl.trim()
  if (!name) return models.default
  const m = models.models.find((x) => x.id === name || x.model_version === name)
  return m ? m.id : name
}

/**
 * The model a comparison shows beside the chosen one: the default when another model is chosen,
 * else the first other model; null with fewer than two models.
 */
export function compareModel(models: Models, chosen: string): ModelInfo | null {
  if (models.models.length < 2) return null
  const id = chosen || models.default
  if (id !== models.default) return models.models[0]
  return models.models.find((m) => m.id !== id) ?? null
}

export function modelById(models: Models, id: string): ModelInfo | undefined {
  return models.models.find((m) => m.id === (id || models.default))
}

function percent(x: number): string {
  return `${(100 * x).toFixed(1)} %`
}

/**
 * The held-out figures in a few words ("held-out r 0.155, Recall@10 9.4 %"), or that a model
 * fitted on every article has none.
 */
export function evaluationText(m: ModelInfo): string {
  const e = m.evaluation
  if (!e) return 'fitted on every article: no held-out figures'
  return `held-out r ${e.pearson_r.toFixed(3)}, Recall@10 ${percent(e.recall_at_10)}`
}

/** The figures' details for a tooltip: how many articles were held out, how, and what else was scored. */
export function evaluationDetails(m: ModelInfo): string {
  const e = m.evaluation
  const lines: string[] = []
  if (m.description) lines.push(m.description)
  if (!e) {
    lines.push('Fitted on every article, so no article was held out to measure it on.')
    return lines.join('\n')
  }
  lines.push(
    `Measured on ${e.articles !== undefined ? `${e.articles.toLocaleString('en-US')} ` : ''}held-out articles: mean Pearson r ${e.pearson_r.toFixed(3)} between predicted and actual maps; Recall@10 ${percent(e.recall_at_10)} (each article's own map among the 10 closest to the prediction from its text).`,
  )
  if (e.split) lines.push(`Split: ${e.split}`)
  for (const c of e.compared ?? []) lines.push(`On the same split, ${c.name}: r ${c.pearson_r.toFixed(3)}, Recall@10 ${percent(c.recall_at_10)}`)
  return lines.join('\n')
}
