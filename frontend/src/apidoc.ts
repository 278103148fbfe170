// curl examples for the API section, for the page's own origin. Pure.

import { encodeQueryParam } from './urlstate'

export interface Example {
  label: string
  command: string
}

/** Single-quotes a string for a POSIX shell. */
export function shellQuote(s: string): string {
  return "'" + s.replace(/'/g, `'\\''`) + "'"
}

/**
 * The examples for the text q, the map id shown (its poll and download URLs), a decoding's id, and
 * model: the id of the chosen model when it is not the default ("" or absent: the default, which a
 * request need not name).
 */
export function curlExamples(origin: string, q: string, id?: string, decodingId?: string, model = ''): Example[] {
  const query = q.trim() || 'working memory'
  const mapId = id && /^[0-9a-f]{32}$/.test(id) ? id : 'ID'
  const decId = decodingId && /^[0-9a-f]{32}$/.test(decodingId) ? decodingId : ''
  const body = JSON.stringify(model ? { query, wait: 10, model } : { query, wait: 10 })
  const withModel = model ? `&model=${encodeURIComponent(model)}` : ''
  return [
    {
      label: model
        ? `Map a query with the model ${model} (waits up to 10 s; a 202 answer gives a poll URL)`
        : 'Map a query (waits up to 10 s; a 202 answer gives a poll URL)',
      command: `curl ${shellQuote(`${origin}/api/v1/maps?q=${encodeQueryParam(query)}&wait=10${withModel}`)}`,
    },
    {
      label: 'The same as a POST with a JSON body',
      command: `curl -X POST ${shellQuote(`${origin}/api/v1/maps`)} -H 'Content-Type: application/json' -d ${shellQuote(body)}`,
    },
    {
      label: 'Poll a pending map by its id',
      command: `curl ${shellQuote(`${origin}/api/v1/maps/${mapId}?wait=5`)}`,
    },
    {
      label: 'Download the map (NIfTI-1, float32 z-scores, 4 mm MNI)',
      command: `curl -o map.nii.gz ${shellQuote(`${origin}/api/v1/maps/${mapId}/map.nii.gz`)}`,
    },
    {
      // the file of the command above: the two in a row decode a predicted map
      label: 'Decode a map file (NIfTI, .nii or .nii.gz, MNI space, at most 30 MB): related terms and studies',
      command: `curl --data-binary @map.nii.gz -H 'X-File-Name: map.nii.gz' ${shellQuote(`${origin}/api/v1/decodings?wait=10`)}`,
    },
    // with a decoding on the page only: its id is what the example is for
    ...(decId
      ? [
          {
            label: 'This decoding by its id (poll it while pending)',
            command: `curl ${shellQuote(`${origin}/api/v1/decodings/${decId}?wait=5`)}`,
          },
        ]
      : []),
    {
      label: 'Terms recognised in a text',
      command: `curl ${shellQuote(`${origin}/api/v1/terms?q=${encodeQueryParam(query)}${withModel}`)}`,
    },
    {
      label: 'The models served (the default first), with their held-out figures',
      command: `curl ${shellQuote(`${origin}/api/v1/models`)}`,
    },
    {
      label: 'Model version',
      command: `curl ${shellQuote(`${origin}/api/v1/version`)}`,
    },
  ]
}
