import { describe, expect, it } from 'vitest'
import { compareModel, evaluationDetails, evaluationText, modelById, parseModels, requestModel, resolveModel } from '../src/models'

// as GET /api/v1/models answers in the tests' stack
const ANSWER = {
  default: 'neuroquery',
  models: [
    {
      id: 'neuroquery',
      name: 'neuroquery',
      kind: 'neuroquery',
      model_version: 'nq-5ae6e749637bec81',
      default: true,
      features: 6308,
      mapped_features: 6308,
      evaluation: null,
    },
    {
      id: 'text2brain-nn-tiny',
      name: 'text2brain-nn-tiny',
      kind: 'text2brain-nn',
      model_version: 'nn-d4ba84c9a2aee8c6',
      description: 'A tiny network',
      default: false,
      features: 6308,
      mapped_features: 6000,
      evaluation: {
        split: 'the first 1346 articles held out',
        articles: 200,
        pearson_r: 0.15512,
        recall_at_10: 0.094,
        compared: [{ name: 'ridge', pearson_r: 0.146, recall_at_10: 0.074 }, { name: 'broken' }],
      },
    },
  ],
}

describe('the models list', () => {
  it('reads the answer, the default first', () => {
    const m = parseModels(ANSWER)
    expect(m.default).toBe('neuroquery')
    expect(m.models.map((x) => x.id)).toEqual(['neuroquery', 'text2brain-nn-tiny'])
    expect(m.models[0].evaluation).toBeNull()
    expect(m.models[1].evaluation?.compared).toEqual([{ name: 'ridge', pearson_r: 0.146, recall_at_10: 0.074 }])
  })

  it('puts the default first whatever the order, and names a nameless model by its id', () => {
    const m = parseModels({
      default: 'b',
      models: [{ id: 'a', name: 'Model A' }, { id: 'b' }, { id: 'a' }, { name: 'no id' }, null],
    })
    expect(m.models.map((x) => [x.id, x.name, x.default])).toEqual([
      ['b', 'b', true],
      ['a', 'Model A', false],
    ])
    expect(parseModels({ models: [{ id: 'x' }, { id: 'y', default: true }] }).default).toBe('y')
    expect(parseModels({ models: [{ id: 'x' }, { id: 'y' }] }).default).toBe('x')
  })

  it('is an empty list for an unreadable answer (the page then works as with one model)', () => {
    for (const body of [undefined, null, 'text', {}, { models: 'no' }]) {
      expect(parseModels(body)).toEqual({ default: '', models: [] })
    }
    // an evaluation without its figures is none
    expect(parseModels({ models: [{ id: 'x', evaluation: { pearson_r: 'high' } }] }).models[0].evaluation).toBeNull()
  })
})

describe('which model a request and a comparison name', () => {
  const m = parseModels(ANSWER)

  it('names no model for the default', () => {
    expect(requestModel(m, '')).toBe('')
    expect(requestModel(m, 'neuroquery')).toBe('')
    expect(requestModel(m, 'text2brain-nn-tiny')).toBe('text2brain-nn-tiny')
    // before the list has come, the URL's model goes as it is
    expect(requestModel(parseModels(undefined), 'text2brain-nn-tiny')).toBe('text2brain-nn-tiny')
  })

  it("resolves a URL's model by id or version, keeps one not served", () => {
    expect(resolveModel(m, '')).toBe('neuroquery')
    expect(resolveModel(m, ' text2brain-nn-tiny ')).toBe('text2brain-nn-tiny')
    expect(resolveModel(m, 'nn-d4ba84c9a2aee8c6')).toBe('text2brain-nn-tiny')
    expect(resolveModel(m, 'nope')).toBe('nope')
    expect(modelById(m, '')?.id).toBe('neuroquery')
    expect(modelById(m, 'nope')).toBeUndefined()
  })

  it('compares the chosen model with the default, or the default with the first other', () => {
    expect(compareModel(m, 'text2brain-nn-tiny')?.id).toBe('neuroquery')
    expect(compareModel(m, 'neuroquery')?.id).toBe('text2brain-nn-tiny')
    expect(compareModel(m, '')?.id).toBe('text2brain-nn-tiny')
    const three = parseModels({ models: [{ id: 'a' }, { id: 'b' }, { id: 'c' }] })
    expect(compareModel(three, 'c')?.id).toBe('a')
    expect(compareModel(three, 'a')?.id).toBe('b')
    expect(compareModel(parseModels({ models: [{ id: 'a' }] }), 'a')).toBeNull()
  })
})

describe('held-out figures in words', () => {
  const m = parseModels(ANSWER)

  it('gives r and Recall@10, or says there are none', () => {
    expect(evaluationText(m.models[1])).toBe('held-out r 0.155, Recall@10 9.4 %')
    expect(evaluationText(m.models[0])).toBe('fitted on every article: no held-out figures')
  })

  it('details them for a tooltip', () => {
    const d = evaluationDetails(m.models[1])
    expect(d).toContain('A tiny network')
    expect(d).toContain('200 held-out articles')
    expect(d).toContain('ridge: r 0.146, Recall@10 7.4 %')
    expect(evaluationDetails(m.models[0])).toMatch(/no article was held out/)
  })
})
