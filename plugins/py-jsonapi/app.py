"""Paginated JSON API connector, written in Python and componentized with componentize-py.

The API answers ``GET {base_url}/items?limit=N[&page_token=T][&since=C]`` with
``{"items": [{"id", "title", "updated_at", "body"?, "attachment_url"?, "attachment_name"?,
"deleted"?}], "next_page_token": ..., "cursor": ...}`` (the shape of
``tributary_fakes::feed::FakeFeed``). A full sync pages through everything and checkpoints the
final change ``cursor``; an incremental sync asks for the changes ``since`` it and applies
tombstones as deletions. Attachments become content requests: the host downloads and extracts
them, their bytes never enter this plugin.

Only tributary's own capabilities are used (``http`` allowlisted by the host, ``index``,
``storage``, ``log``); the WASI sockets componentize-py links are denied by the host anyway.
"""

import json
import time
from urllib.parse import quote

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import plugin as wit
from wit_world.imports import http, index, log, storage, types

CURSOR_KEY = "cursor"
CURSOR_VERSION = 1
MAX_ATTACHMENT = 10 * 1024 * 1024


# ---- errors, config, http: the part every Python plugin needs -------------------------------


def fail(kind, message):
    """A typed plugin error: ``raise fail(types.Error_Config, "...")``."""
    return Err(kind(message))


def field(key, label, kind, **extra):
    values = dict(
        key=key, label=label, tooltip=None, kind=kind, options=[], default_value=None,
        required=False, sensitive=False, hidden=False, depends_on=[], min=None, max=None,
    )
    values.update(extra)
    return wit.ConfigField(**values)


class Settings:
    def __init__(self, config_json):
        try:
            values = json.loads(config_json)
        except ValueError as e:
            raise fail(types.Error_Config, f"configuration is not JSON: {e}")
        self.base_url = str(values.get("base_url") or "").strip().rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise fail(types.Error_Config, "`base_url` must be an absolute http(s) URL")
        self.token = values.get("api_token") or None
        self.page_size = int(values.get("page_size", 50))
        self.retries = int(values.get("retry_count", 3))

    def host(self):
        return self.base_url.split("://", 1)[1].split("/", 1)[0].lower()

    def headers(self):
        headers = [("Accept", "application/json")]
        if self.token:
            headers.append(("Authorization", f"Bearer {self.token}"))
        return headers

    def request(self, url):
        return http.Request(method=http.Method.GET, url=url, headers=self.headers(), body=None,
                            timeout_ms=30_000)

    def get(self, url):
        """GET with retries on network errors, 429 (honouring Retry-After) and 5xx."""
        last = ""
        for attempt in range(self.retries + 1):
            delay = 0.2 * 2 ** attempt
            try:
                response = http.send(self.request(url))
            except Err as e:
                if isinstance(e.value, (http.HttpError_Denied, http.HttpError_Refused)):
                    raise fail(types.Error_Host, f"GET {url}: {e.value.value}")
                last = f"GET {url}: {type(e.value).__name__}: {e.value.value}"
            else:
                if response.status != 429 and response.status < 500:
                    return response
                last = f"GET {url}: HTTP {response.status} after {attempt + 1} attempt(s)"
                retry_after = dict((k.lower(), v) for k, v in response.headers).get("retry-after")
                if retry_after and retry_after.strip().isdigit():
                    delay = float(retry_after)
            if attempt < self.retries:
                time.sleep(min(delay, 30.0))
        raise fail(types.Error_RateLimited if "HTTP 429" in last else types.Error_Transient, last)


# ---- the API -------------------------------------------------------------------------------


def page(settings, since, page_token):
    url = f"{settings.base_url}/items?limit={settings.page_size}"
    if since is not None:
        url += f"&since={quote(since, safe='')}"
    if page_token:
        url += f"&page_token={quote(page_token, safe='')}"
    response = settings.get(url)
    if response.status in (401, 403):
        raise fail(types.Error_Auth, f"the API refused the token (HTTP {response.status})")
    if response.status == 404:
        raise fail(types.Error_NotFound, f"no API at {settings.base_url}")
    if response.status != 200:
        raise fail(types.Error_Protocol, f"the API answered HTTP {response.status}")
    try:
        return json.loads(response.body)
    except ValueError as e:
        raise fail(types.Error_Protocol, f"malformed JSON from the API: {e}")


def pages(settings, since):
    """Every page from ``since``; a page that fails raises (a listing never stops silently)."""
    token = None
    while True:
        answer = page(settings, since, token)
        yield answer
        next_token = answer.get("next_page_token")
        if not next_token:
            return
        if next_token == token:
            raise fail(types.Error_Protocol, f"pagination did not advance past {token!r}")
        token = next_token


def document(settings, item):
    fields = {"id": item["id"], "_timestamp": item["updated_at"], "title": item.get("title", ""),
              "type": "item"}
    content = None
    if item.get("attachment_url"):
        name = item.get("attachment_name") or "attachment.txt"
        fields["attachment"] = name
        content = index.Content_Fetch(index.ContentRequest(
            request=settings.request(item["attachment_url"]), file_name=name, mime_type=None,
            size=None, max_bytes=MAX_ATTACHMENT, retries=settings.retries))
    elif item.get("body") is not None:
        content = index.Content_Text(item["body"])
    return index.Document(id=item["id"], timestamp=item["updated_at"], fields=json.dumps(fields),
                          content=content)


def sync(settings, since):
    """Pages through the API from ``since``, emitting documents; returns the final cursor."""
    cursor, emitted, deleted = None, 0, []
    for answer in pages(settings, since):
        batch = []
        for item in answer.get("items", []):
            if item.get("deleted"):
                deleted.append(item["id"])
            else:
                batch.append(document(settings, item))
        if batch:
            index.upsert(batch)
            emitted += len(batch)
        cursor = answer.get("cursor") or cursor
    if deleted:
        index.delete(deleted)
    log.log(log.Level.INFO, f"jsonapi: {emitted} document(s) emitted, {len(deleted)} deletion(s)")
    return cursor


def load_cursor():
    raw = storage.get(CURSOR_KEY)
    if raw is None:
        return None
    try:
        stored = json.loads(raw)
        if stored.get("version") == CURSOR_VERSION:
            return stored["state"]
        log.log(log.Level.INFO, f"stored cursor has version {stored.get('version')}: starting over")
    except (ValueError, AttributeError, KeyError) as e:
        log.log(log.Level.WARN, f"ignoring unreadable cursor: {e}")
    return None


def save_cursor(cursor):
    value = None
    if cursor is not None:
        value = json.dumps({"version": CURSOR_VERSION, "state": cursor}).encode()
    for failure in index.checkpoint([(CURSOR_KEY, value)]):
        log.log(log.Level.WARN, f"content of {failure.id} not indexed: {failure.message}")


# ---- the exported interface ----------------------------------------------------------------


class Plugin(exports.Plugin):
    def manifest(self):
        return wit.PluginManifest(
            name="jsonapi",
            display_name="JSON API",
            version="0.1.0",
            description="A paginated JSON API with incremental cursors (Python example plugin)",
            config=[
                field("base_url", "API base URL", wit.FieldKind.TEXT, required=True,
                      tooltip="e.g. https://api.example.com/v1"),
                field("api_token", "API token", wit.FieldKind.TEXT, sensitive=True),
                field("page_size", "Page size", wit.FieldKind.INTEGER, default_value="50",
                      min=1, max=1000),
                field("retry_count", "Retries per request", wit.FieldKind.INTEGER,
                      default_value="3", min=0, max=10),
            ],
            features=wit.Features.INCREMENTAL_SYNC,
        )

    def allowed_hosts(self, config):
        return [Settings(config).host()]

    def validate_config(self, config):
        Settings(config)

    def ping(self, config):
        settings = Settings(config)
        page(settings, None, None)

    def full_sync(self, request):
        settings = Settings(request.config)
        save_cursor(sync(settings, None))

    def incremental_sync(self, request):
        since = load_cursor()
        if since is None:
            log.log(log.Level.INFO, "no cursor stored yet: running a full listing")
            return self.full_sync(request)
        settings = Settings(request.config)
        save_cursor(sync(settings, since) or since)

    def access_control_sync(self, request):
        raise fail(types.Error_Config, "the jsonapi connector has no access control")

    def validate_advanced_rules(self, config, rules):
        raise Err([wit.RuleError(rule=None, message="the jsonapi connector has no advanced rules")])
