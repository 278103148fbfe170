// text2brain's page: one query box, the JSON API, no build step and no dependencies.
//
// GET /api/v1/maps?q=TEXT&wait=10 answers
//   200 with the result (query, recognized_terms, related_terms, related_articles, peaks, map_url,
//       preview_url),
//   202 with {id, status: "pending", poll} and Retry-After while the map is computed: poll `poll`,
//   4xx/5xx with {"error": {"code", "message"}}: the message is shown as it is.
// Every wait has an end: a person never watches a spinner for ever.
'use strict';

(function () {
  const EXAMPLE = 'self-generated thought';
  const WAIT_SECONDS = 10;          // the server holds the first request this long at most
  const GIVE_UP_AFTER_MS = 120000;  // then the page stops polling and says so
  const REQUEST_TIMEOUT_MS = 30000; // one HTTP request

  const $ = (id) => document.getElementById(id);
  const form = $('search');
  const input = $('q');
  const statusLine = $('status');
  const result = $('result');

  let generation = 0; // a new search makes every older one stop quietly
  let inflight = null;

  function setStatus(text, kind) {
    statusLine.textContent = text || '';
    statusLine.className = kind || '';
  }

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  // fetchJSON does one request with a timeout; it resolves to {status, headers, body} where body is
  // the parsed JSON or, for anything else, {text}.
  async function fetchJSON(url, controller) {
    const timer = setTimeout(() => controller.abort(new Error('timeout')), REQUEST_TIMEOUT_MS);
    try {
      const resp = await fetch(url, { signal: controller.signal, headers: { Accept: 'application/json' } });
      const text = await resp.text();
      let body;
      try {
        body = JSON.parse(text);
      } catch (e) {
        body = { text: text };
      }
      return { status: resp.status, headers: resp.headers, body: body };
    } finally {
      clearTimeout(timer);
    }
  }

  function errorMessage(resp) {
    const b = resp.body || {};
    if (b.error && b.error.message) {
      return b.error.message;
    }
    const text = (b.text || '').trim();
    return 'The service answered with HTTP ' + resp.status + (text ? ': ' + text.slice(0, 300) : '.');
  }

  function retryAfterMs(headers) {
    const v = parseFloat(headers.get('Retry-After'));
    const s = Number.isFinite(v) ? v : 1;
    return Math.min(Math.max(s, 0.5), 10) * 1000;
  }

  async function search(q) {
    const mine = ++generation;
    if (inflight) {
      inflight.abort();
    }
    const controller = new AbortController();
    inflight = controller;
    const started = Date.now();
    input.value = q;
    document.title = q + ' – text2brain';
    setStatus('Computing the brain map for “' + q + '”…', 'busy');

    let url = '/api/v1/maps?q=' + encodeURIComponent(q) + '&wait=' + WAIT_SECONDS;
    try {
      for (;;) {
        const resp = await fetchJSON(url, controller);
        if (mine !== generation) return;
        if (resp.status === 200) {
          render(resp.body, q);
          setStatus('');
          return;
        }
        if (resp.status !== 202) {
          result.hidden = true;
          setStatus(errorMessage(resp), 'error');
          return;
        }
        if (Date.now() - started > GIVE_UP_AFTER_MS) {
          setStatus('The map for “' + q + '” is taking longer than expected. It is still being ' +
            'computed: try again in a minute.', 'error');
          return;
        }
        setStatus('Computing the brain map for “' + q + '”… (' +
          Math.round((Date.now() - started) / 1000) + ' s)', 'busy');
        url = (resp.body && resp.body.poll) || url;
        await sleep(retryAfterMs(resp.headers));
        if (mine !== generation) return;
      }
    } catch (err) {
      if (mine !== generation) return;
      const why = err && err.message === 'timeout' ? 'it did not answer in time'
        : (err && err.name === 'AbortError' ? 'the request was cancelled' : String(err && err.message || err));
      result.hidden = true;
      setStatus('Could not reach the service (' + why + '). Check your connection and try again.', 'error');
    } finally {
      if (inflight === controller) inflight = null;
    }
  }

  // safeURL accepts http(s) URLs only (relative ones resolve against the page).
  function safeURL(u) {
    if (!u) return null;
    try {
      const parsed = new URL(u, window.location.href);
      return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : null;
    } catch (e) {
      return null;
    }
  }

  function el(tag, text, attrs) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }

  function link(href, text) {
    const a = el('a', text, { href: href, rel: 'noopener noreferrer', target: '_blank' });
    return a;
  }

  function fmt(x, digits) {
    return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '';
  }

  function render(r, q) {
    $('result-title').textContent = '“' + (r.query || q) + '”';

    const preview = $('preview');
    const previewURL = safeURL(r.preview_url);
    preview.alt = 'Predicted brain map for “' + (r.query || q) + '”: sagittal, coronal and axial slices';
    preview.onerror = () => {
      preview.hidden = true;
      setStatus('The preview image could not be loaded; the map download may still work.', 'error');
    };
    if (previewURL) {
      preview.hidden = false;
      preview.src = previewURL;
    } else {
      preview.hidden = true;
    }

    const download = $('download');
    const mapURL = safeURL(r.map_url);
    download.hidden = !mapURL;
    if (mapURL) download.href = mapURL;

    const recognized = r.recognized_terms || [];
    $('recognized').textContent = recognized.length ? recognized.join(', ') : '—';

    const terms = $('related-terms');
    terms.replaceChildren();
    for (const t of r.related_terms || []) {
      const li = el('li', t.term + ' ');
      li.appendChild(el('span', fmt(t.weight, 2), { class: 'weight' }));
      terms.appendChild(li);
    }

    const peaks = $('peaks').tBodies[0];
    peaks.replaceChildren();
    for (const p of (r.peaks || []).slice(0, 10)) {
      const tr = el('tr');
      const mni = p.mni || [];
      for (const v of [mni[0], mni[1], mni[2]]) tr.appendChild(el('td', fmt(v, 0)));
      tr.appendChild(el('td', fmt(p.z, 2)));
      peaks.appendChild(tr);
    }

    const articles = $('articles');
    articles.replaceChildren();
    for (const a of r.related_articles || []) {
      const li = el('li');
      const pubmed = safeURL(a.url);
      const title = a.title || ('PMID ' + a.pmid);
      li.appendChild(pubmed ? link(pubmed, title) : el('span', title));
      const meta = [a.authors, a.year ? '(' + a.year + ')' : '', a.journal].filter(Boolean).join(' ');
      if (meta) li.appendChild(el('div', meta, { class: 'meta' }));
      const extra = el('div', 'r = ' + fmt(a.correlation, 2), { class: 'meta' });
      if (a.doi) {
        extra.appendChild(document.createTextNode(' · '));
        extra.appendChild(link('https://doi.org/' + encodeURI(a.doi), 'doi:' + a.doi));
      }
      li.appendChild(extra);
      articles.appendChild(li);
    }

    result.hidden = false;
  }

  function queryFromURL() {
    return (new URLSearchParams(window.location.search).get('q') || '').trim();
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = input.value.trim();
    if (!q) {
      setStatus('Type some text to map, for example “' + EXAMPLE + '”.', 'error');
      return;
    }
    // The URL is the share link.
    if (queryFromURL() !== q) {
      history.pushState({ q: q }, '', '?q=' + encodeURIComponent(q));
    }
    search(q);
  });

  window.addEventListener('popstate', () => {
    search(queryFromURL() || EXAMPLE);
  });

  // Wake Predict up while the person types (fire and forget; the server rate-limits it).
  fetch('/api/v1/warm', { method: 'POST', keepalive: true }).catch(() => {});

  search(queryFromURL() || EXAMPLE);
})();
