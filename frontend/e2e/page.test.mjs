// End-to-end tests of the page in Debian's Chromium, driven by playwright-core, against a running
// stack (T2B_URL). functions/internal/dev/browser starts the stack, runs these with node's test
// runner, then checks the files they leave in T2B_ARTIFACTS (downloads, feedback, screenshots).
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { chromium } from 'playwright-core'

const BASE = (process.env.T2B_URL ?? 'http://127.0.0.1:8080/').replace(/\/$/, '')
const ORIGIN = new URL(BASE).origin
const ART = process.env.T2B_ARTIFACTS ?? path.resolve('..', 'build', 'artifacts', 'browser')
const DOWNLOADS = path.join(ART, 'downloads')
// Software WebGL on two cores: a first full frame takes seconds.
const DRAWN = 90_000

let browser
/** Requests that left the site's origin, and CSP violations or page errors, across all tests. */
const foreign = []
const problems = []
/** WebGL warnings about drawing into an empty (hidden) canvas. */
const glNoise = []
const figures = {}

before(async () => {
  await mkdir(DOWNLOADS, { recursive: true })
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--enable-unsafe-swiftshader', '--use-angle=swiftshader',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-first-run', '--disable-quic'],
  })
})

after(async () => {
  await browser?.close()
  await writeFile(path.join(ART, 'figures.json'), JSON.stringify(figures, null, 2))
})

/** A new page that records every request to another origin and every CSP violation or error. */
async function newPage(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true, ...options })
  const page = await context.newPage()
  page.on('request', (req) => {
    const u = new URL(req.url())
    if (!['data:', 'blob:'].includes(u.protocol) && u.origin !== ORIGIN) foreign.push(req.url())
  })
  page.on('console', (msg) => {
    if (/Content Security Policy|Refused to/i.test(msg.text())) problems.push(`CSP: ${msg.text()}`)
    if (/GL_INVALID|glViewport/i.test(msg.text())) glNoise.push(msg.text().slice(0, 200))
  })
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
  return page
}

async function waitDrawn(page, selector = '#viewer') {
  await page.waitForSelector(`${selector}[data-drawn="true"]`, { timeout: DRAWN })
}

async function waitReady(page) {
  await page.waitForFunction(() => document.body.dataset.state === 'ready', null, { timeout: DRAWN })
  await waitDrawn(page)
}

/** The variance of the pixels of an element as drawn on screen (0 for a blank canvas). */
async function pixelVariance(page, selector) {
  const shot = await page.locator(selector).screenshot()
  return page.evaluate(async (b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))
    const bmp = await createImageBitmap(new Blob([bytes], { type: 'image/png' }))
    const c = new OffscreenCanvas(bmp.width, bmp.height)
    const g = c.getContext('2d')
    g.drawImage(bmp, 0, 0)
    const d = g.getImageData(0, 0, bmp.width, bmp.height).data
    let n = 0, sum = 0, sq = 0
    for (let i = 0; i < d.length; i += 4) {
      const v = (d[i] + d[i + 1] + d[i + 2]) / 3
      sum += v; sq += v * v; n++
    }
    const mean = sum / n
    return sq / n - mean * mean
  }, shot.toString('base64'))
}

async function screenshotHash(page, selector) {
  const shot = await page.locator(selector).screenshot()
  const { createHash } = await import('node:crypto')
  return createHash('sha256').update(shot).digest('hex')
}

async function search(page, text) {
  await page.fill('#q', text)
  await page.press('#q', 'Enter')
}

/** The maps query route (not the map files under it). */
const mapsQuery = (url) => url.pathname === '/api/v1/maps'

const peakRows = (page) => page.locator('#peaks tbody tr')

describe('the page', { concurrency: false }, () => {
  test('a new query, typed, shows progress then the drawn map, terms and studies', async () => {
    const page = await newPage()
    const warmups = []
    page.on('request', (r) => r.url().endsWith('/api/v1/warm') && warmups.push(r.method()))
    await page.goto(BASE + '/')
    // Without ?q= the page shows an example.
    await waitReady(page)
    assert.notEqual(await page.inputValue('#q'), '')
    assert.deepEqual(warmups, ['POST'], 'the page warms Predict once on load')

    // Recognised terms are highlighted as they are typed.
    const text = `auditory cortex and music listening ${Date.now() % 1000}`
    await page.fill('#q', text)
    await page.waitForFunction(() => document.querySelectorAll('mark.term').length >= 2, null, { timeout: 10_000 })
    const marks = await page.locator('mark.term').allTextContents()
    assert.ok(marks.some((m) => /auditory/i.test(m)), `highlighted ${marks}`)
    assert.ok(marks.some((m) => /music/i.test(m)), `highlighted ${marks}`)

    const first = page.waitForResponse((r) => r.url().includes('/api/v1/maps?'))
    await page.press('#q', 'Enter')
    const status = (await first).status()
    assert.ok([200, 202].includes(status), `maps answered ${status}`)
    await waitReady(page)
    assert.equal(new URL(page.url()).searchParams.get('q'), text)
    assert.match(await page.textContent('#result-title'), /auditory/i)
    assert.ok((await page.locator('#related-terms button.term').count()) >= 5)
    assert.equal(await page.textContent('#terms-h'), 'Terms that shaped the map')
    assert.ok((await page.locator('#related-terms button.term.query').count()) >= 1, 'the query terms are marked')
    assert.ok((await page.locator('#articles li').count()) >= 5)
    assert.ok(await page.locator('#articles a[href^="https://pubmed.ncbi.nlm.nih.gov/"]').count() >= 5)
    const v = await pixelVariance(page, '#viewer')
    assert.ok(v > 100, `viewer pixel variance ${v}`)
    assert.ok((await peakRows(page).count()) >= 1, 'no peak at the default threshold')
    assert.equal(await page.inputValue('#threshold'), '3.1')
    await page.screenshot({ path: path.join(ART, 'desktop.png'), fullPage: true })
    await page.context().close()
  })

  test('a cached query is shown at once from a share link, and the time is reported', async () => {
    const warm = await newPage()
    await warm.goto(BASE + '/?q=' + encodeURIComponent('viewing faces'))
    await waitReady(warm)
    await warm.context().close()

    const page = await newPage()
    const t0 = Date.now()
    const answer = page.waitForResponse((r) => r.url().includes('/api/v1/maps?'))
    await page.goto(BASE + '/?q=' + encodeURIComponent('viewing faces'))
    assert.equal((await answer).status(), 200, 'a cached query answers 200 at once')
    await waitReady(page)
    figures.cached_navigation_to_drawn_ms = Date.now() - t0
    assert.equal(await page.inputValue('#q'), 'viewing faces')
    assert.match(await page.textContent('#result-title'), /viewing faces/i)
    // the server had the map: the page says so rather than a computing time
    assert.match(await page.textContent('#status'), /from the cache/i)
    // the elapsed seconds are not part of what the live region announces
    assert.equal(await page.locator('#status .secs[aria-hidden="true"]').count(), 1)
    // What a first visit transfers before the first result is drawn (bytes on the wire, as the
    // browser counts them), and what the surface view loads after it.
    Object.assign(figures, await page.evaluate(() => {
      const drawnAt = performance.now()
      const all = performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
      const sum = (es) => es.reduce((n, e) => n + (e.transferSize || 0), 0)
      const surface = all.filter((e) => /fsaverage5|surface\.json/.test(e.name))
      return {
        first_visit_bytes_before_drawn: sum(all.filter((e) => !surface.includes(e) && e.startTime <= drawnAt)),
        surface_bytes: sum(surface),
        first_visit_requests: all.filter((e) => !surface.includes(e)).map((e) => `${new URL(e.name).pathname} ${e.transferSize}`),
      }
    }))
    await page.context().close()
  })

  test('back and forward restore earlier queries', async () => {
    const page = await newPage()
    await page.goto(BASE + '/?q=' + encodeURIComponent('working memory'))
    await waitReady(page)
    await search(page, 'reading words')
    await page.waitForFunction(() => new URL(location.href).searchParams.get('q') === 'reading words', null, { timeout: DRAWN })
    await waitReady(page)
    assert.match(await page.textContent('#result-title'), /reading words/i)

    await page.goBack()
    await page.waitForFunction(() => document.querySelector('#q').value === 'working memory', null, { timeout: DRAWN })
    await waitReady(page)
    assert.match(await page.textContent('#result-title'), /working memory/i)
    await page.goForward()
    await page.waitForFunction(() => document.querySelector('#q').value === 'reading words', null, { timeout: DRAWN })
    await waitReady(page)
    assert.match(await page.textContent('#result-title'), /reading words/i)
    await page.context().close()
  })

  test('a text with no known term is a message that says what to do, not a spinner', async () => {
    const page = await newPage()
    await page.goto(BASE + '/?q=' + encodeURIComponent('working memory'))
    await waitReady(page)
    // feedback being written stays through map changes until it is sent
    await page.fill('#feedback-text', 'a draft')
    await search(page, 'zzxq wvvb')
    await page.waitForSelector('#error:not([hidden])', { timeout: 20_000 })
    const message = await page.textContent('#error p.what')
    assert.match(message, /term|word/i, message)
    assert.ok((message.match(/\btry\b/gi) ?? []).length <= 1, `one suggestion: ${message}`)
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'error')
    assert.doesNotMatch(await page.textContent('#status'), /Computing|Queued/)
    // the previous map stays, dimmed, and the error says whose it is; the API examples follow the text
    assert.ok(await page.locator('#result').isVisible())
    assert.match(await page.getAttribute('#result', 'class'), /stale/)
    assert.match(await page.textContent('#error'), /still the one for “working memory”/)
    assert.match(await page.locator('#api-examples code').first().textContent(), /zzxq\+wvvb/)
    // The page is usable again: a good query after the error works.
    await search(page, 'working memory')
    await waitReady(page)
    assert.ok(await page.locator('#error').isHidden())
    assert.equal(await page.inputValue('#feedback-text'), 'a draft')
    await page.context().close()
  })

  test('every error the API answers is a message with what to do, and the page recovers', async () => {
    const page = await newPage()
    await page.goto(BASE + '/?q=' + encodeURIComponent('working memory'))
    await waitReady(page)
    const cases = [
      [413, 'too_long', 'The query is too long: at most 2000 characters.', {}, /2,?000|shorten/i],
      [429, 'rate_limited', 'Too many requests from your address.', { 'Retry-After': '3' }, /wait 3 seconds/i],
      [503, 'unavailable', 'The job queue is unavailable right now.', { 'Retry-After': '5' }, /retry/i],
      [500, 'misconfigured', 'T2B_RESULTS_BUCKET is not set.', {}, /try again later/i],
    ]
    for (const [status, code, message, headers, want] of cases) {
      // The API's own answer, as the real server sends it, for this one request.
      await page.route(mapsQuery, (route) => route.fulfill({
        status, headers: { 'Content-Type': 'application/json', ...headers },
        body: JSON.stringify({ error: { code, message } }),
      }), { times: 1 })
      await search(page, `visual cortex ${code}`)
      await page.waitForSelector('#error:not([hidden])', { timeout: 20_000 })
      const text = await page.textContent('#error')
      assert.match(text, want, `${code}: ${text}`)
      if (headers['Retry-After']) {
        // a retry before Retry-After would be refused again: the button waits
        assert.ok(await page.locator('#error button.retry').isDisabled(), `${code}: Retry enabled at once`)
      }
      assert.equal(await page.evaluate(() => document.body.dataset.state), 'error')
      assert.doesNotMatch(await page.textContent('#status'), /Computing|Queued|Sending/, `${code}: still busy`)
    }
    // Offline: the request fails in the network.
    await page.route(mapsQuery, (route) => route.abort('internetdisconnected'), { times: 1 })
    await search(page, 'visual cortex offline')
    await page.waitForSelector('#error:not([hidden])', { timeout: 20_000 })
    assert.match(await page.textContent('#error'), /connection|network|offline/i)
    await search(page, 'working memory')
    await waitReady(page)
    assert.ok(await page.locator('#error').isHidden())
    await page.context().close()
  })

  test('a text over 2,000 characters is refused whole, counted as the server counts', async () => {
    const page = await newPage()
    const maps = []
    page.on('request', (r) => mapsQuery(new URL(r.url())) && maps.push(r.url()))
    // from a link: the text is in the box, the message says how long it is, nothing is searched
    await page.goto(BASE + '/?q=' + 'b'.repeat(2001))
    await page.waitForSelector('#error:not([hidden])', { timeout: 20_000 })
    assert.equal((await page.inputValue('#q')).length, 2001)
    assert.match(await page.textContent('#error'), /2,001 characters; the limit is 2,000/)
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'error')
    assert.deepEqual(maps, [])
    // pasted: not cut, counted, refused on Enter
    await page.fill('#q', 'faces '.repeat(350))
    assert.equal(await page.inputValue('#q'), 'faces '.repeat(350))
    assert.match(await page.textContent('#q-count'), /2,099 characters/)
    await page.press('#q', 'Enter')
    await page.waitForFunction(() => /2,099 characters/.test(document.querySelector('#error').textContent))
    assert.deepEqual(maps, [])
    // 1,001 emoji are 2,002 UTF-16 units but 1,001 characters: the API takes the text
    await search(page, '😀'.repeat(1001) + ' faces')
    await waitReady(page)
    assert.equal(maps.length >= 1, true)
    assert.ok(await page.locator('#error').isHidden())
    // a long text: the title is clamped, the page title is short
    assert.ok(Array.from(await page.title()).length <= 75, await page.title())
    const h2 = await page.locator('#result-title').boundingBox()
    assert.ok(h2.height < 140, `title ${h2.height} px high`)
    await page.context().close()
  })

  test("the API section's curl examples work as written", async () => {
    const page = await newPage()
    await page.goto(BASE + '/?q=' + encodeURIComponent('viewing faces') + '#api')
    await waitReady(page)
    // the link's #api lands on the section once the result above it is drawn
    await page.waitForTimeout(300)
    const top = await page.evaluate(() => document.querySelector('#api').getBoundingClientRect().top)
    assert.ok(top >= -2 && top < 900, `#api at ${top}`)
    // the commands scroll sideways: each is focusable, with a name
    assert.equal(await page.locator('#api-examples pre[tabindex="0"][aria-labelledby]').count(), await page.locator('#api-examples pre').count())
    const commands = await page.locator('#api-examples code').allTextContents()
    assert.ok(commands.length >= 4, `${commands.length} examples`)
    assert.ok(await page.locator('#api a[href="/openapi.yaml"]').count() === 1)
    const spec = await fetch(BASE + '/openapi.yaml')
    assert.equal(spec.status, 200)
    let tried = 0
    // the decode example sends the file the download example wrote (curl -o map.nii.gz)
    let downloaded = null
    for (const cmd of commands) {
      const url = cmd.match(/'(https?:\/\/[^']+)'/)?.[1]
      assert.ok(url, `no URL in ${cmd}`)
      assert.equal(new URL(url).origin, ORIGIN, cmd)
      const post = cmd.match(/-d '([^']+)'/)?.[1]
      const upload = cmd.match(/--data-binary @(\S+)/)?.[1]
      let init = post ? { method: 'POST', body: post, headers: { 'Content-Type': 'application/json' } } : {}
      if (upload) {
        assert.equal(upload, 'map.nii.gz', cmd)
        assert.ok(downloaded, `${cmd}: no command before it downloads ${upload}`)
        init = { method: 'POST', body: downloaded, headers: { 'X-File-Name': cmd.match(/-H 'X-File-Name: ([^']+)'/)?.[1] ?? '' } }
      }
      const r = await fetch(url, init)
      assert.ok(r.status === 200 || r.status === 202, `${cmd} → ${r.status}`)
      if (/-o map\.nii\.gz /.test(cmd)) downloaded = Buffer.from(await r.arrayBuffer())
      if (upload) assert.equal((await r.json()).kind, 'decoding', cmd)
      tried++
    }
    assert.equal(tried, commands.length)
    await page.context().close()
  })

  test('the threshold, the peak table, a peak click and the readout', async () => {
    const page = await newPage()
    await page.goto(BASE + '/?q=' + encodeURIComponent('viewing faces'))
    await waitReady(page)
    const before = await screenshotHash(page, '#viewer')
    // the slider reaches the map's largest |z| (maps go well past 10)
    assert.ok(Number(await page.getAttribute('#threshold', 'max')) > 10)
    const rowsAt31 = await peakRows(page).count()
    const firstAt31 = await peakRows(page).first().textContent()

    // Keyboard: the slider is reachable and moves with the arrow keys.
    await page.focus('#threshold')
    await page.keyboard.press('ArrowRight')
    assert.equal(await page.inputValue('#threshold'), '3.2')

    await page.fill('#threshold', '8')
    await page.dispatchEvent('#threshold', 'input')
    await page.dispatchEvent('#threshold', 'change')
    await page.waitForFunction(() => document.querySelector('#threshold-value').textContent.includes('8'))
    await page.waitForFunction((n) => document.querySelectorAll('#peaks tbody tr').length !== n, rowsAt31, { timeout: 20_000 })
    const rowsAt8 = await peakRows(page).count()
    assert.ok(rowsAt8 < rowsAt31, `${rowsAt8} clusters at 8, ${rowsAt31} at 3.1`)
    await page.waitForTimeout(1500) // the viewer redraws in software
    assert.notEqual(await screenshotHash(page, '#viewer'), before, 'the view did not change with the threshold')

    await page.fill('#threshold', '3.1')
    await page.dispatchEvent('#threshold', 'input')
    await page.dispatchEvent('#threshold', 'change')
    await page.waitForFunction((n) => document.querySelectorAll('#peaks tbody tr').length === n, rowsAt31, { timeout: 20_000 })
    assert.equal(await peakRows(page).first().textContent(), firstAt31)

    // A click on a peak moves the crosshair there: the readout shows its coordinates.
    const row = peakRows(page).nth(Math.min(1, rowsAt31 - 1))
    const cells = await row.locator('td').allTextContents()
    const [x, y, z] = cells.slice(1, 4).map((c) => c.replace('−', '-').trim())
    // the button's name starts with its visible text
    assert.match(await row.locator('button').getAttribute('aria-label'), /^Go /)
    await row.locator('button').click()
    await page.waitForFunction(([x, y, z]) => {
      const t = document.querySelector('#readout').textContent.replace(/−/g, '-')
      return t.includes(x) && t.includes(y) && t.includes(z)
    }, [x, y, z], { timeout: 20_000 })
    const readout = await page.textContent('#readout')
    assert.match(readout, /z-score/)
    // after Go the viewer has the focus, so the arrow keys go on from the peak
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'viewer')
    await page.click('#jump-max')
    await page.waitForFunction((r) => document.querySelector('#readout').textContent !== r, readout, { timeout: 20_000 })
    await page.context().close()
  })

  test('the surface view is drawn', async () => {
    const page = await newPage()
    await page.goto(BASE + '/?q=' + encodeURIComponent('viewing faces'))
    await waitReady(page)
    await page.locator('#surface').scrollIntoViewIfNeeded()
    await waitDrawn(page, '#surface')
    const v = await pixelVariance(page, '#surface')
    assert.ok(v > 100, `surface pixel variance ${v}`)
    await page.selectOption('#surface-mesh', 'inflated')
    await page.waitForTimeout(500)
    await waitDrawn(page, '#surface')
    assert.ok(await pixelVariance(page, '#surface') > 100)
    await page.context().close()
  })

  test('every download, and feedback', async () => {
    const page = await newPage()
    await page.goto(BASE + '/?q=' + encodeURIComponent('viewing faces'))
    await waitReady(page)
    const mapId = await page.getAttribute('#result', 'data-map-id')
    assert.match(mapId, /^[0-9a-f]{32}$/)
    const files = {}
    for (const [key, selector, name] of [['nifti', '#download-map', 'map.nii.gz'], ['png', '#download-png', 'view.png'],
      ['peaks', '#download-peaks', 'peaks.csv'], ['csv', '#export-csv', 'studies.csv'], ['bibtex', '#export-bibtex', 'studies.bib']]) {
      const download = page.waitForEvent('download', { timeout: 60_000 })
      await page.click(selector)
      const d = await download
      assert.ok(d.suggestedFilename().startsWith('text2brain-'), d.suggestedFilename())
      await d.saveAs(path.join(DOWNLOADS, name))
      files[key] = name
    }
    // the peaks CSV has every cluster at the threshold, with the query and threshold on each row
    const peaksCsv = (await readFile(path.join(DOWNLOADS, 'peaks.csv'), 'utf8')).trimEnd().split('\r\n')
    assert.equal(peaksCsv.length - 1, await page.evaluate(() => window.__t2b.clusters))
    assert.match(peaksCsv[0], /^query,threshold_z,model_version,sign,/)
    assert.match(peaksCsv[1], /^viewing faces,3\.1,/)
    const box = await page.locator('#viewer').boundingBox()
    await writeFile(path.join(DOWNLOADS, 'downloads.json'), JSON.stringify({
      map_id: mapId, ...files, ViewWidth: Math.round(box.width), ViewHeight: Math.round(box.height),
    }))

    const text = `browser test feedback ${Date.now()}`
    await page.fill('#feedback-text', text)
    await page.click('#feedback-send')
    await page.waitForFunction(() => /stored|thank/i.test(document.querySelector('#feedback-status').textContent), null, { timeout: 20_000 })
    await writeFile(path.join(ART, 'feedback.json'), JSON.stringify({ map_id: mapId, text }))
    await page.context().close()
  })

  test('the keyboard alone maps a query', async () => {
    const page = await newPage()
    await page.goto(BASE + '/?q=' + encodeURIComponent('working memory'))
    await waitReady(page)
    await page.focus('body')
    // The first Tab stop skips to the search box; typing and Enter map the text.
    for (let i = 0; i < 5 && (await page.evaluate(() => document.activeElement?.id)) !== 'q'; i++) {
      await page.keyboard.press('Tab')
      if ((await page.evaluate(() => document.activeElement?.classList.contains('skip')))) await page.keyboard.press('Enter')
    }
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'q')
    // the viewer's focus ring is not clipped by its frame: the frame draws it
    await page.focus('#download-png')
    await page.keyboard.press('Tab')
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'viewer')
    const ring = await page.evaluate(() => {
      const s = getComputedStyle(document.querySelector('#viewer-frame'))
      return `${s.outlineStyle} ${s.outlineWidth}`
    })
    assert.equal(ring, 'solid 3px')
    await page.focus('#q')
    await page.keyboard.press('Control+A')
    await page.keyboard.type('listening to music')
    await page.keyboard.press('Enter')
    await page.waitForFunction(() => new URL(location.href).searchParams.get('q') === 'listening to music', null, { timeout: DRAWN })
    await waitReady(page)
    await page.context().close()
  })

  test('a phone-sized screen: no horizontal scrolling, the viewer fits', async () => {
    const page = await newPage({ viewport: { width: 375, height: 667 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true })
    await page.goto(BASE + '/?q=' + encodeURIComponent('viewing faces'))
    await waitReady(page)
    const { scroll, client, viewer } = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth,
      viewer: document.querySelector('#viewer').getBoundingClientRect().right,
    }))
    assert.ok(scroll <= client, `the page scrolls sideways: ${scroll} > ${client}`)
    assert.ok(viewer <= client, `the viewer overflows: ${viewer} > ${client}`)
    assert.ok(await pixelVariance(page, '#viewer') > 100)
    // the peak table fits without scrolling sideways
    const table = await page.evaluate(() => { const t = document.querySelector('.table-scroll'); return [t.scrollWidth, t.clientWidth] })
    assert.ok(table[0] <= table[1], `the peak table is ${table[0]} px in ${table[1]}`)
    // a vertical swipe over the viewer scrolls the page, a tap moves the crosshair
    await page.locator('#viewer').scrollIntoViewIfNeeded()
    const cdp = await page.context().newCDPSession(page)
    const bb = await page.locator('#viewer').boundingBox()
    const y0 = await page.evaluate(() => scrollY)
    const readout = await page.textContent('#readout')
    const [sx, sy] = [bb.x + bb.width / 2, bb.y + bb.height * 0.8]
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [{ x: sx, y: sy }] })
    for (let i = 1; i <= 10; i++) {
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: [{ x: sx, y: sy - i * 20 }] })
      await page.waitForTimeout(16)
    }
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] })
    await page.waitForFunction((y) => scrollY > y + 50, y0, { timeout: 5_000 })
    assert.equal(await page.textContent('#readout'), readout, 'the swipe moved the crosshair')
    // (a tap during the swipe's fling would only stop it)
    await page.waitForTimeout(1000)
    await page.locator('#viewer').scrollIntoViewIfNeeded()
    await page.waitForTimeout(300)
    const tb = await page.locator('#viewer').boundingBox()
    const vh = await page.evaluate(() => innerHeight)
    const top = Math.max(tb.y, 0)
    await page.touchscreen.tap(tb.x + tb.width * 0.3, top + (Math.min(tb.y + tb.height, vh) - top) * 0.3)
    await page.waitForFunction((r) => document.querySelector('#readout').textContent !== r, readout, { timeout: 20_000 })
    await page.evaluate(() => scrollTo(0, 0))
    await page.screenshot({ path: path.join(ART, 'phone.png'), fullPage: true })
    await page.context().close()
  })

  test('decode a map: upload a NIfTI file, get its terms and studies, search a term; wrong files are explained', async () => {
    // A real map to upload: the stack's own map of "viewing faces", saved as a file.
    let answer = await (await fetch(BASE + '/api/v1/maps?q=' + encodeURIComponent('viewing faces') + '&wait=10')).json()
    for (let i = 0; answer.status !== 'done' && i < 30; i++) {
      answer = await (await fetch(new URL(answer.poll, BASE + '/') + '?wait=5')).json()
    }
    assert.equal(answer.status, 'done')
    const mapBytes = Buffer.from(await (await fetch(new URL(answer.map_url, BASE + '/'))).arrayBuffer())
    const uploads = path.join(ART, 'uploads')
    await mkdir(uploads, { recursive: true })
    const mapFile = path.join(uploads, 'viewing-faces.nii.gz')
    await writeFile(mapFile, mapBytes)

    const page = await newPage()
    const posts = []
    page.on('request', (r) => r.method() === 'POST' && new URL(r.url()).pathname === '/api/v1/decodings' && posts.push(r.url()))
    await page.goto(BASE + '/?q=' + encodeURIComponent('working memory'))
    await waitReady(page)

    // The mode is a tab, reached and switched with the keyboard; its button is the next Tab stop.
    await page.focus('#tab-search')
    await page.keyboard.press('ArrowRight')
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'tab-decode')
    assert.equal(await page.getAttribute('#tab-decode', 'aria-selected'), 'true')
    assert.ok(await page.locator('#panel-decode').isVisible())
    assert.ok(await page.locator('#panel-search').isHidden())
    await page.keyboard.press('Tab')
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'decode-choose')

    // Every stage the status line names, as it changes.
    await page.evaluate(() => {
      window.__stages = []
      const label = document.querySelector('#status .label')
      new MutationObserver(() => window.__stages.push(label.textContent)).observe(label, { childList: true, characterData: true, subtree: true })
    })
    const posted = page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/api/v1/decodings')
    await page.setInputFiles('#decode-file', mapFile)
    const status = (await posted).status()
    assert.ok([200, 202].includes(status), `POST /api/v1/decodings answered ${status}: ${await (await posted).text()}`)
    await page.waitForFunction(() => window.__t2b.kind === 'decoding' && document.body.dataset.state === 'ready', null, { timeout: DRAWN })
    await waitDrawn(page)
    const stages = await page.evaluate(() => window.__stages)
    assert.ok(stages.includes('Uploading…'), `stages: ${stages}`)
    assert.match(await page.textContent('#status'), /Decoding ready/)

    // The result: in the URL, titled with the file, its terms and studies, the map drawn.
    const id = await page.getAttribute('#result', 'data-map-id')
    assert.match(id, /^[0-9a-f]{32}$/)
    assert.equal(await page.getAttribute('#result', 'data-kind'), 'decoding')
    assert.equal(new URL(page.url()).searchParams.get('decoding'), id)
    assert.equal(new URL(page.url()).searchParams.get('q'), null)
    assert.match(await page.textContent('#result-title'), /Decoded: viewing-faces\.nii\.gz/)
    assert.equal(await page.textContent('#terms-h'), 'Related terms')
    const terms = await page.locator('#related-terms button.term .label').allTextContents()
    assert.ok(terms.length >= 5, `terms: ${terms}`)
    assert.ok(terms.slice(0, 10).some((t) => /face|fusiform|visual/i.test(t)), `a map of faces decodes to ${terms.slice(0, 10)}`)
    assert.ok((await page.locator('#articles li').count()) >= 5)
    assert.ok(await page.locator('#articles a[href^="https://pubmed.ncbi.nlm.nih.gov/"]').count() >= 5)
    assert.ok(await pixelVariance(page, '#viewer') > 100)
    // the values are the upload's own: no claim of z
    assert.match(await page.textContent('#threshold-label'), /\|value\|/)
    assert.equal(await page.textContent('#peaks-value-h'), 'Peak value')
    assert.match(await page.textContent('#readout'), / value /)
    assert.doesNotMatch(await page.textContent('#readout'), /z-score/)
    const [value, max] = [Number(await page.inputValue('#threshold')), Number(await page.getAttribute('#threshold', 'max'))]
    assert.ok(value > 0 && value <= 3.1 && max > value, `threshold ${value}, max ${max}`)
    assert.ok((await peakRows(page).count()) >= 1, 'no peak at the default threshold')
    assert.equal(await page.inputValue('#share-url'), `${BASE}/?decoding=${id}`)
    const download = page.waitForEvent('download', { timeout: 60_000 })
    await page.click('#download-map')
    assert.equal((await download).suggestedFilename(), 'text2brain-decoded-viewing-faces.nii.gz')
    await page.screenshot({ path: path.join(ART, 'decoding.png'), fullPage: true })

    // A file that is not NIfTI, dropped on the page: refused before anything is sent.
    const before = posts.length
    await page.evaluate(() => {
      const dt = new DataTransfer()
      dt.items.add(new File(['x,y,z\n1,2,3\n'], 'notes.txt', { type: 'text/plain' }))
      const drop = document.querySelector('#drop')
      for (const type of ['dragenter', 'dragover', 'drop']) drop.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }))
    })
    await page.waitForSelector('#error:not([hidden])', { timeout: 20_000 })
    assert.match(await page.textContent('#error p.what'), /“notes\.txt” is not a NIfTI file\. Choose a statistical map/)
    assert.match(await page.textContent('#error'), /still the decoding of “viewing-faces\.nii\.gz”/)
    assert.equal(posts.length, before, 'the text file was sent')
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'error')

    // A gzip stream cut short: the server reads it and says so.
    const broken = path.join(uploads, 'broken.nii.gz')
    await writeFile(broken, mapBytes.subarray(0, 400))
    const refused = page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/api/v1/decodings')
    await page.setInputFiles('#decode-file', broken)
    assert.equal((await refused).status(), 400)
    await page.waitForFunction(() => /gzip|NIfTI/.test(document.querySelector('#error:not([hidden]) p.what')?.textContent ?? ''), null, { timeout: 20_000 })
    const message = await page.textContent('#error p.what')
    assert.match(message, /Choose a statistical map saved as NIfTI/, message)
    assert.doesNotMatch(await page.textContent('#status'), /Uploading|Checking|Computing|Queued/)

    // The errors the server answers for a map it cannot decode, as it sends them.
    for (const [code, want] of [['no_transform', /transform to MNI space/], ['outside_brain', /MNI space/], ['empty_map', /values that vary/],
      ['too_large', /Compress it/]]) {
      await page.route((u) => u.pathname === '/api/v1/decodings', (route) => route.fulfill({
        status: code === 'too_large' ? 413 : 422, headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ error: { code, message: `The server says ${code}.` } }),
      }), { times: 1 })
      await page.setInputFiles('#decode-file', mapFile)
      await page.waitForFunction((c) => document.querySelector('#error p.what')?.textContent.includes(`says ${c}`), code, { timeout: 20_000 })
      assert.match(await page.textContent('#error p.what'), want, code)
    }

    // A related term is searched as text, in the search tab.
    await page.setInputFiles('#decode-file', mapFile)
    await page.waitForFunction(() => window.__t2b.kind === 'decoding' && document.body.dataset.state === 'ready', null, { timeout: DRAWN })
    const term = (await page.locator('#related-terms button.term .label').first().textContent()).trim()
    await page.locator('#related-terms button.term').first().click()
    await page.waitForFunction((t) => new URL(location.href).searchParams.get('q') === t, term, { timeout: DRAWN })
    await page.waitForFunction(() => window.__t2b.kind === 'map', null, { timeout: DRAWN })
    await waitReady(page)
    assert.equal(await page.inputValue('#q'), term)
    assert.equal(await page.getAttribute('#tab-search', 'aria-selected'), 'true')
    assert.match(await page.textContent('#threshold-label'), /\|z\|/)
    assert.equal(await page.inputValue('#threshold'), '3.1')
    // back: the decoding again
    await page.goBack()
    await page.waitForFunction(() => window.__t2b.kind === 'decoding' && document.body.dataset.state === 'ready', null, { timeout: DRAWN })
    assert.equal(await page.getAttribute('#tab-decode', 'aria-selected'), 'true')
    await page.context().close()

    // The share link, on a phone: the decoding comes back, and the page fits the screen.
    const phone = await newPage({ viewport: { width: 375, height: 667 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true })
    await phone.goto(`${BASE}/?decoding=${id}`)
    await waitReady(phone)
    assert.equal(await phone.getAttribute('#result', 'data-map-id'), id)
    assert.ok(await phone.locator('#decode-choose').isVisible())
    const { scroll, client } = await phone.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }))
    assert.ok(scroll <= client, `the page scrolls sideways: ${scroll} > ${client}`)
    await phone.screenshot({ path: path.join(ART, 'decoding-phone.png'), fullPage: true })
    // a malformed link says what to do rather than showing some other map
    await phone.goto(`${BASE}/?decoding=nope`)
    await phone.waitForSelector('#error:not([hidden])', { timeout: 20_000 })
    assert.match(await phone.textContent('#error'), /Upload the map again/)
    await phone.context().close()
  })

  test('a second model: picked, sent, in the URL; two models side by side, stacked on a phone', async () => {
    const listed = await (await fetch(BASE + '/api/v1/models')).json()
    assert.ok(listed.models.length >= 2, `the stack serves ${listed.models.length} model(s)`)
    const [def, other] = listed.models
    assert.equal(def.id, listed.default)
    // the default model's map of the text, straight from the API, to tell the two apart
    let faces = await (await fetch(BASE + '/api/v1/maps?q=' + encodeURIComponent('viewing faces') + '&wait=10')).json()
    for (let i = 0; faces.status !== 'done' && i < 30; i++) faces = await (await fetch(new URL(faces.poll, BASE + '/') + '?wait=5')).json()
    assert.equal(faces.model, def.id)

    const page = await newPage()
    const maps = []
    page.on('request', (r) => { const u = new URL(r.url()); if (mapsQuery(u)) maps.push(u) })
    const terms = []
    page.on('request', (r) => { const u = new URL(r.url()); if (u.pathname === '/api/v1/terms') terms.push(u) })
    await page.goto(BASE + '/?q=' + encodeURIComponent('working memory'))
    await waitReady(page)

    // The picker: each model by name, the default first and chosen, with its figures.
    await page.waitForSelector('#model-row:not([hidden])', { timeout: 20_000 })
    const options = await page.locator('#model option').evaluateAll((os) => os.map((o) => [o.value, o.textContent]))
    assert.deepEqual(options.map((o) => o[0]), listed.models.map((m) => m.id))
    assert.ok(options.every(([, text], i) => text.includes(listed.models[i].name)), JSON.stringify(options))
    assert.equal(await page.inputValue('#model'), def.id)
    assert.equal(await page.textContent('#model-figures'), 'fitted on every article: no held-out figures')
    assert.equal(await page.isChecked('#compare-toggle'), false)
    assert.ok(await page.locator('#compare').isHidden())

    // The second model, then a query: the request names it, the map is its own, the URL keeps it.
    await page.selectOption('#model', other.id)
    await page.waitForFunction((id) => new URL(location.href).searchParams.get('model') === id, other.id, { timeout: 10_000 })
    assert.match(await page.textContent('#model-figures'), /^held-out r \d\.\d{3}, Recall@10 \d+\.\d %$/)
    assert.match(await page.getAttribute('#model-figures', 'title'), /held-out articles/)
    await search(page, 'viewing faces')
    await page.waitForFunction((id) => window.__t2b.model === id && document.body.dataset.state === 'ready' &&
      new URL(location.href).searchParams.get('q') === 'viewing faces', other.id, { timeout: DRAWN })
    await waitDrawn(page)
    const sent = maps.filter((u) => u.searchParams.get('q') === 'viewing faces')
    assert.ok(sent.length >= 1 && sent.every((u) => u.searchParams.get('model') === other.id), sent.map(String).join(' '))
    assert.ok(terms.some((u) => u.searchParams.get('model') === other.id), 'the highlighting asks the model picked')
    const url = new URL(page.url())
    assert.equal(url.searchParams.get('model'), other.id)
    assert.equal(url.searchParams.get('q'), 'viewing faces')
    assert.equal(await page.getAttribute('#result', 'data-model'), other.id)
    const mapId = await page.getAttribute('#result', 'data-map-id')
    assert.notEqual(mapId, faces.id, 'the same map id as the default model')
    const mine = await (await fetch(`${BASE}/api/v1/maps/${mapId}`)).json()
    assert.equal(mine.model, other.id)
    assert.notEqual(mine.model_version, faces.model_version)
    assert.match(await page.textContent('#result-meta'), new RegExp(`model ${other.name}`))
    assert.ok(await pixelVariance(page, '#viewer') > 100)
    assert.match(await page.inputValue('#share-url'), new RegExp(`[?&]model=${other.id}(&|$)`))
    assert.ok((await page.locator('#api-examples code').allTextContents()).some((c) => c.includes(`model=${other.id}`)))

    // Side by side: the chosen model and the default, each with its name, its map, peaks and terms.
    await page.check('#compare-toggle')
    await page.waitForFunction(() => new URL(location.href).searchParams.get('compare') === '1')
    await page.waitForSelector('#compare:not([hidden])')
    const drawnPanels = () => [...document.querySelectorAll('#compare .cmp-panel')].every((p) => p.dataset.state === 'ready' &&
      (p.querySelector('canvas').dataset.drawn === 'true' || p.querySelector('img.cmp-preview').dataset.loaded === 'true'))
    await page.waitForFunction(drawnPanels, null, { timeout: DRAWN })
    const panels = await page.locator('#compare .cmp-panel').evaluateAll((ps) => ps.map((p) => ({
      model: p.dataset.model, name: p.querySelector('.cmp-name').textContent, mapId: p.dataset.mapId,
      version: p.dataset.modelVersion, figures: p.querySelector('.cmp-figures').textContent,
      terms: p.querySelectorAll('.cmp-terms button.term').length, peaksNote: p.querySelector('.cmp-peaks-note').textContent,
      box: p.getBoundingClientRect().toJSON(),
    })))
    assert.equal(panels.length, 2)
    assert.deepEqual(panels.map((p) => p.model), [other.id, def.id])
    assert.deepEqual(panels.map((p) => p.name), [other.name, def.name])
    assert.deepEqual(panels.map((p) => p.mapId), [mapId, faces.id])
    assert.notEqual(panels[0].version, panels[1].version)
    assert.equal(panels[1].figures, 'fitted on every article: no held-out figures')
    assert.ok(panels.every((p) => p.terms >= 1 && /cluster/.test(p.peaksNote)), JSON.stringify(panels))
    // next to each other on a desktop
    assert.ok(Math.abs(panels[0].box.top - panels[1].box.top) < 2 && panels[1].box.left >= panels[0].box.right, JSON.stringify(panels.map((p) => p.box)))
    // the second panel asked for its own model's map: the default's request names none
    assert.ok(maps.some((u) => u.searchParams.get('q') === 'viewing faces' && !u.searchParams.has('model')), 'no request for the default model')
    for (const sel of ['#cmp-a .cmp-frame', '#cmp-b .cmp-frame']) assert.ok(await pixelVariance(page, sel) > 100, `${sel} is blank`)
    assert.match(await page.inputValue('#share-url'), /[?&]compare=1(&|$)/)
    // a peak of one panel moves both crosshairs there
    const go = page.locator('#cmp-b .cmp-peaks button.go').first()
    if (await go.count()) {
      await go.click()
      await page.waitForFunction(() => {
        const [a, b] = [...document.querySelectorAll('#compare .cmp-readout')].map((r) => r.textContent.split(' · ')[0])
        return a && a === b
      }, null, { timeout: 20_000 })
    }
    await page.locator('#compare').scrollIntoViewIfNeeded()
    await page.screenshot({ path: path.join(ART, 'compare.png'), fullPage: true })
    // the threshold applies to both panels
    // (the slider reaches the chosen map's largest |z|, which for the tiny network is small)
    await page.fill('#threshold', '2')
    await page.dispatchEvent('#threshold', 'input')
    await page.waitForFunction(() => [...document.querySelectorAll('#compare .cmp-peaks-note')].every((n) => /\|z\| ≥ 2\.0/.test(n.textContent)), null, { timeout: 20_000 })

    // Off: the section goes, and the URL forgets it.
    await page.uncheck('#compare-toggle')
    assert.ok(await page.locator('#compare').isHidden())
    assert.equal(new URL(page.url()).searchParams.get('compare'), null)
    // back: the same text with the model picked before it (the default)
    await page.goBack()
    await page.waitForFunction(() => document.querySelector('#q').value === 'working memory', null, { timeout: DRAWN })
    await page.goBack()
    await page.waitForFunction((id) => window.__t2b.model === id && document.body.dataset.state === 'ready', def.id, { timeout: DRAWN })
    assert.equal(await page.inputValue('#model'), def.id)
    assert.equal(new URL(page.url()).searchParams.get('model'), null)
    await page.context().close()

    // The share link on a phone: the same model and comparison, the panels stacked, no sideways scroll.
    const phone = await newPage({ viewport: { width: 375, height: 667 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true })
    await phone.goto(`${BASE}/?q=${encodeURIComponent('viewing faces')}&model=${other.id}&compare=1`)
    await waitReady(phone)
    assert.equal(await phone.inputValue('#model'), other.id)
    assert.equal(await phone.isChecked('#compare-toggle'), true)
    await phone.waitForFunction(drawnPanels, null, { timeout: DRAWN })
    const boxes = await phone.locator('#compare .cmp-panel').evaluateAll((ps) => ps.map((p) => p.getBoundingClientRect().toJSON()))
    assert.ok(boxes[1].top >= boxes[0].bottom, `not stacked: ${JSON.stringify(boxes)}`)
    const { scroll, client } = await phone.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }))
    assert.ok(scroll <= client, `the page scrolls sideways: ${scroll} > ${client}`)
    await phone.locator('#compare').scrollIntoViewIfNeeded()
    await phone.screenshot({ path: path.join(ART, 'compare-phone.png'), fullPage: true })

    // A link naming a model the server does not serve: a message that says what to do.
    await phone.goto(`${BASE}/?q=${encodeURIComponent('viewing faces')}&model=nope`)
    await phone.waitForSelector('#error:not([hidden])', { timeout: 20_000 })
    assert.match(await phone.textContent('#error p.what'), /no model "nope".*Pick one in the Model list/)
    await phone.waitForSelector('#model-row:not([hidden])', { timeout: 20_000 })
    assert.match(await phone.locator('#model option:checked').textContent(), /nope \(not served here\)/)
    await phone.selectOption('#model', def.id)
    await phone.waitForFunction((id) => window.__t2b.model === id && document.body.dataset.state === 'ready', def.id, { timeout: DRAWN })
    assert.ok(await phone.locator('#error').isHidden())
    assert.equal(new URL(phone.url()).searchParams.get('model'), null)
    await phone.context().close()
  })

  test('no request left the site, no CSP violation, no page error', () => {
    assert.deepEqual(foreign, [])
    assert.deepEqual(problems, [])
    assert.deepEqual(glNoise, [], 'WebGL drew into a hidden canvas')
  })
})
