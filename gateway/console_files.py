"""The console's static files (gateway/console/), served as they are: no
build step, nothing fetched from elsewhere, so the page works offline."""

import os

from werkzeug.wrappers import Response

from gateway.errors import NotFound

CONSOLE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "console")
PAGE = ("index.html", "text/html; charset=utf-8")
# The files under /console/<name>; nothing else is served from the folder.
ASSETS = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    # Failure triage: groups, the inspector and its edit, the audit trail.
    "triage.css": "text/css; charset=utf-8",
    "triage.js": "text/javascript; charset=utf-8",
}
HEADERS = {
    # Read afresh on every load: the files are small, and an upgraded
    # gateway must not be paired with an old script.
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Only this gateway's own files and endpoints; no inline script.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
}


def serve(name: str, content_type: str) -> Response:
    with open(os.path.join(CONSOLE_DIR, name), "rb") as source:
        body = source.read()
    return Response(body, content_type=content_type, headers=HEADERS)


def console_page() -> Response:
    return serve(*PAGE)


def console_asset(name: str) -> Response:
    if name not in ASSETS:
        raise NotFound(f"no console file {name!r:.60}")
    return serve(name, ASSETS[name])
