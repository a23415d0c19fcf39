// RSS / Atom connector, written in JavaScript and componentized with jco (see README.md).
//
// A full sync indexes every entry the feed lists; an incremental sync indexes the entries
// published (or updated) after the stored cursor: the newest entry date seen, the guids seen at
// exactly that date (feeds often stamp several entries with one date) and the feed's ETag, sent
// back as If-None-Match so an unchanged feed costs one 304. The summary HTML is turned into text
// by the host's extractors. Everything goes through tributary's own capabilities: the `http`
// import (allowlisted by the host), `index`, `storage`, `extract` and `log`.

import { log } from 'tributary:connector/log@0.1.0';
import { send } from 'tributary:connector/http@0.1.0';
import { get as storageGet } from 'tributary:connector/storage@0.1.0';
import { upsert, checkpoint } from 'tributary:connector/index@0.1.0';
import { extractText } from 'tributary:connector/extract@0.1.0';

const CURSOR_KEY = 'cursor';
const CURSOR_VERSION = 1;
const BATCH = 100;

// ---- errors, config, http: the part every JavaScript plugin needs ---------------------------

/** A typed plugin error (`auth`, `not-found`, `rate-limited`, `config`, `transient`, `protocol`,
 * `host`, `other`); throwing it from an export returns that error to the host. */
class PluginError extends Error {
  constructor(tag, message) {
    super(message);
    this.tag = tag;
    this.val = message;
    this.payload = { tag, val: message };
  }
}

function config(json) {
  let values;
  try {
    values = JSON.parse(json);
  } catch (e) {
    throw new PluginError('config', `configuration is not JSON: ${e}`);
  }
  const url = String(values.feed_url ?? '').trim();
  if (!/^https?:\/\/[^/?#]+/i.test(url)) {
    throw new PluginError('config', '`feed_url` must be an absolute http(s) URL');
  }
  return { url, retries: Number(values.retry_count ?? 3) };
}

function hostOf(url) {
  const authority = url.replace(/^[a-z]+:\/\//i, '').split(/[/?#]/)[0];
  return authority.split('@').pop().toLowerCase();
}

/** The WIT error payload of a failed import call (componentize-js throws it). */
function payloadOf(e) {
  return e && e.payload !== undefined ? e.payload : e;
}

function wait(ms) {
  // Exports run synchronously; a wait is a short spin bounded by the caller (<= 5 s in total).
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // waiting for the source's Retry-After / backoff
  }
}

/** GET with retries on network errors, 429 (honouring Retry-After) and 5xx. */
function get(url, headers, retries) {
  let last = '';
  let waited = 0;
  for (let attempt = 0; attempt <= retries; attempt++) {
    let response;
    try {
      response = send({ method: 'get', url, headers, body: undefined, timeoutMs: 30000 });
    } catch (e) {
      const p = payloadOf(e);
      if (p && (p.tag === 'denied' || p.tag === 'refused')) {
        throw new PluginError('host', `GET ${url}: ${p.val}`);
      }
      last = `GET ${url}: ${p && p.tag}: ${p && p.val}`;
      waited += backoff(attempt, undefined, waited);
      continue;
    }
    if (response.status === 429 || response.status >= 500) {
      last = `GET ${url}: HTTP ${response.status} after ${attempt + 1} attempt(s)`;
      if (attempt < retries) {
        waited += backoff(attempt, header(response, 'retry-after'), waited);
      }
      continue;
    }
    return response;
  }
  throw new PluginError(last.includes('HTTP 429') ? 'rate-limited' : 'transient', last);
}

function backoff(attempt, retryAfter, waited) {
  const seconds = Number(retryAfter);
  let ms = Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : 200 * 2 ** attempt;
  ms = Math.min(ms, Math.max(0, 5000 - waited));
  wait(ms);
  return ms;
}

function header(response, name) {
  const found = response.headers.find(([n]) => n.toLowerCase() === name);
  return found ? found[1] : undefined;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

// ---- the feed ------------------------------------------------------------------------------

function decodeEntities(text) {
  return text
    .replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d) => String.fromCodePoint(parseInt(d, 10)))
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

/** The text of the first `<tag …>…</tag>` in `xml` (CDATA unwrapped, entities decoded). */
function tag(xml, name) {
  const match = xml.match(new RegExp(`<${name}(?:\\s[^>]*)?>([\\s\\S]*?)</${name}>`));
  if (!match) return undefined;
  const cdata = match[1].match(/^\s*<!\[CDATA\[([\s\S]*?)\]\]>\s*$/);
  return cdata ? cdata[1] : decodeEntities(match[1].trim());
}

function attribute(xml, name, attr) {
  const match = xml.match(new RegExp(`<${name}\\s[^>]*${attr}="([^"]*)"`));
  return match ? decodeEntities(match[1]) : undefined;
}

function isoDate(text, what) {
  const ms = Date.parse(text ?? '');
  if (Number.isNaN(ms)) {
    throw new PluginError('protocol', `${what} has no valid date (${JSON.stringify(text)})`);
  }
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

/** Entries of an RSS 2.0 or Atom document: {guid, title, url, date, html, categories}. */
function parseFeed(xml) {
  const atom = /<feed[\s>]/.test(xml) && !/<rss[\s>]/.test(xml);
  if (!atom && !/<rss[\s>]/.test(xml)) {
    throw new PluginError('protocol', `not an RSS or Atom feed: ${JSON.stringify(xml.slice(0, 80))}`);
  }
  const channel = tag(xml.replace(/<(item|entry)[\s>][\s\S]*$/, ''), 'title') ?? '';
  const blocks = xml.match(atom ? /<entry[\s>][\s\S]*?<\/entry>/g : /<item[\s>][\s\S]*?<\/item>/g) ?? [];
  const entries = blocks.map((block) => {
    const url = atom ? attribute(block, 'link', 'href') : tag(block, 'link');
    const guid = (atom ? tag(block, 'id') : tag(block, 'guid')) ?? url;
    if (!guid) throw new PluginError('protocol', 'an entry has neither guid/id nor link');
    const categories = atom
      ? [...block.matchAll(/<category\s[^>]*term="([^"]*)"/g)].map((m) => decodeEntities(m[1]))
      : [...block.matchAll(/<category(?:\s[^>]*)?>([\s\S]*?)<\/category>/g)].map((m) => decodeEntities(m[1].trim()));
    return {
      guid,
      title: tag(block, 'title') ?? '',
      url,
      date: isoDate(atom ? tag(block, 'updated') ?? tag(block, 'published') : tag(block, 'pubDate'), `entry ${guid}`),
      html: (atom ? tag(block, 'summary') ?? tag(block, 'content') : tag(block, 'description')) ?? '',
      categories,
    };
  });
  return { channel, entries };
}

function plainText(html, guid) {
  if (!html) return '';
  try {
    return extractText(encoder.encode(html), `${guid}.html`, 'text/html');
  } catch (e) {
    log('debug', `extracting the summary of ${guid} failed (${JSON.stringify(payloadOf(e))}); stripping tags`);
    return decodeEntities(html.replace(/<[^>]*>/g, ' ')).replace(/\s+/g, ' ').trim();
  }
}

function document(entry, channel) {
  const fields = {
    id: entry.guid,
    _timestamp: entry.date,
    title: entry.title,
    url: entry.url ?? null,
    published: entry.date,
    categories: entry.categories,
    feed: channel,
    type: 'entry',
  };
  return {
    id: entry.guid,
    timestamp: entry.date,
    fields: JSON.stringify(fields),
    content: { tag: 'text', val: plainText(entry.html, entry.guid) },
  };
}

function emitAll(entries, channel) {
  for (let i = 0; i < entries.length; i += BATCH) {
    upsert(entries.slice(i, i + BATCH).map((e) => document(e, channel)));
  }
}

/** Newest date among `entries` and the guids carrying it, merged with the previous cursor. */
function advance(previous, entries, etag) {
  let newest = previous ? previous.newest : '';
  let guids = previous ? [...previous.guids] : [];
  for (const e of entries) {
    if (e.date > newest) {
      newest = e.date;
      guids = [e.guid];
    } else if (e.date === newest && !guids.includes(e.guid)) {
      guids.push(e.guid);
    }
  }
  guids.sort();
  return { newest, guids, etag: etag ?? null };
}

function loadCursor() {
  const bytes = storageGet(CURSOR_KEY);
  if (!bytes) return undefined;
  try {
    const stored = JSON.parse(decoder.decode(bytes));
    if (stored.version === CURSOR_VERSION) return stored.state;
    log('info', `stored cursor has version ${stored.version}, this plugin writes ${CURSOR_VERSION}: starting over`);
  } catch (e) {
    log('warn', `ignoring unreadable cursor: ${e}`);
  }
  return undefined;
}

function saveCursor(cursor) {
  const bytes = encoder.encode(JSON.stringify({ version: CURSOR_VERSION, state: cursor }));
  for (const failure of checkpoint([[CURSOR_KEY, bytes]])) {
    log('warn', `content of ${failure.id} not indexed: ${failure.message}`);
  }
}

function fetchFeed(settings, etag) {
  const headers = [['Accept', 'application/rss+xml, application/atom+xml, application/xml;q=0.9']];
  if (etag) headers.push(['If-None-Match', etag]);
  const response = get(settings.url, headers, settings.retries);
  if (response.status === 304) return { unchanged: true, etag };
  if (response.status === 401 || response.status === 403) {
    throw new PluginError('auth', `the feed refused access (HTTP ${response.status})`);
  }
  if (response.status === 404) throw new PluginError('not-found', `no feed at ${settings.url}`);
  if (response.status !== 200) {
    throw new PluginError('protocol', `the feed answered HTTP ${response.status}`);
  }
  return { ...parseFeed(decoder.decode(response.body)), etag: header(response, 'etag') };
}

function fullSync(request) {
  const settings = config(request.config);
  const feed = fetchFeed(settings, undefined);
  emitAll(feed.entries, feed.channel);
  saveCursor(advance(undefined, feed.entries, feed.etag));
  log('info', `rss: ${feed.entries.length} entr${feed.entries.length === 1 ? 'y' : 'ies'} indexed`);
}

function incrementalSync(request) {
  const cursor = loadCursor();
  if (!cursor) {
    log('info', 'no cursor stored yet: running a full listing');
    return fullSync(request);
  }
  const settings = config(request.config);
  const feed = fetchFeed(settings, cursor.etag);
  if (feed.unchanged) {
    log('info', 'rss: the feed has not changed (304)');
    return;
  }
  const fresh = feed.entries.filter(
    (e) => e.date > cursor.newest || (e.date === cursor.newest && !cursor.guids.includes(e.guid)),
  );
  emitAll(fresh, feed.channel);
  saveCursor(advance(cursor, fresh, feed.etag));
  log('info', `rss: ${fresh.length} new or updated entr${fresh.length === 1 ? 'y' : 'ies'}`);
}

// ---- the exported interface ----------------------------------------------------------------

export const plugin = {
  manifest() {
    const field = (key, label, kind, extra) => ({
      key, label, tooltip: undefined, kind, options: [], defaultValue: undefined, required: false,
      sensitive: false, hidden: false, dependsOn: [], min: undefined, max: undefined, ...extra,
    });
    return {
      name: 'rss',
      displayName: 'RSS / Atom feed',
      version: '0.1.0',
      description: 'Entries of an RSS 2.0 or Atom feed, incrementally by date (JavaScript example plugin)',
      config: [
        field('feed_url', 'Feed URL', 'text', { required: true, tooltip: 'e.g. https://example.com/feed.xml' }),
        field('retry_count', 'Retries per request', 'integer', { defaultValue: '3', min: 0n, max: 10n }),
      ],
      features: { incrementalSync: true },
    };
  },
  allowedHosts(json) {
    return [hostOf(config(json).url)];
  },
  validateConfig(json) {
    config(json);
  },
  ping(json) {
    fetchFeed(config(json), undefined);
  },
  fullSync,
  incrementalSync,
  accessControlSync() {
    throw new PluginError('config', 'the rss connector has no access control');
  },
  validateAdvancedRules() {
    throw [{ rule: undefined, message: 'the rss connector has no advanced rules' }];
  },
};
