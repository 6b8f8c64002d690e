"""A local imitation of Google Drive's download endpoint, for the download tests.

``GET /uc?id=ID`` (the link gdown builds) and ``GET /download?id=ID&export=download`` answer
the way Drive does for the file registered under ``ID``: the file itself (with ``Range``
support), the virus-scan confirmation page (today's form with ``confirm`` and ``uuid``, or
an older token link; the file is served only when the right answer comes back), the quota
page (HTML with status 200, as Drive sends it), a 503 error page, or a 404 error page for
unknown ids. A file can also drop its first transfers mid-way, or ignore ``Range`` and always
send everything.
Every request is recorded so tests can assert what the client asked for.

gdown treats a link as Drive's only on Drive's own hosts, so :meth:`FakeDrive.route` sends
requests for ``https://drive.google.com/...`` and ``https://docs.google.com/...`` here, and
:meth:`FakeDrive.url` gives those real links; :meth:`FakeDrive.mirror_url` is a plain link
to the same server (a mirror, which gdown downloads without Drive's pages). The pages keep
Drive's own shapes where gdown reads them: the quota message and the download form each on
one line, the older link as ``/uc?export=download&confirm=TOKEN&id=ID``.
"""

from __future__ import annotations

import threading
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

QUOTA_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head>
<body><div class="uc-main"><p class="uc-error-caption">Sorry, you can't view or download this file at this time.</p>
<p class="uc-error-subcaption">Too many users have viewed or downloaded this file recently. Please try accessing the file again later. If the file you are trying to access is particularly large or is shared with many people, it may take up to 24 hours to be able to view or download the file.</p></div></body></html>"""

NOT_FOUND_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Page Not Found</title></head>
<body><p>Sorry, the file you have requested does not exist.</p></body></html>"""

BUSY_PAGE = """<!DOCTYPE html><html><head><title>Error 503 (Service Unavailable)</title></head>
<body><p>The service you requested is not available yet. Please try again in 30 seconds.</p></body></html>"""

WARNING_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head>
<body><div class="uc-main"><p class="uc-warning-caption">Google Drive can't scan this file for viruses.</p>
<p class="uc-warning-subcaption"><span class="uc-name-size"><a href="/open?id={id}">{name}</a> (1.2G)</span>
is too large for Google to scan for viruses. Would you still like to download this file?</p>
{way}</div></body></html>"""

# The ways a warning page leads on: today's form (confirm and uuid), or an older link with a confirm token.
CONFIRM_WAYS = {
    "form": """<form id="download-form" action="{action}" method="get"><input type="submit" id="uc-download-link" class="goog-inline-block jfk-button" value="Download anyway"/><input type="hidden" name="id" value="{id}"><input type="hidden" name="export" value="download"><input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="{uuid}"></form>""",
    "link": """<a id="uc-download-link" href="/uc?export=download&amp;confirm={token}&amp;id={id}">Download anyway</a>""",
}
DRIVE_HOSTS = ("https://drive.google.com/", "https://docs.google.com/")


@dataclass
class DriveFile:
    content: bytes
    name: str = "file.bin"
    confirm: str | None = None       # a virus-scan page (a CONFIRM_WAYS key) until its answer comes back
    quota: bool = False              # the quota page instead of the file
    drops: tuple[int, ...] = ()      # transfer k < len(drops): full Content-Length, drops[k] bytes, close
    honour_range: bool = True        # False: every reply is 200 with the whole file
    busy: int = 0                    # the first requests get Drive's HTML error page with HTTP 503
    content_type: str = "application/octet-stream"
    uuid: str = field(default_factory=lambda: str(uuidlib.uuid4()))
    transfers: int = 0


@dataclass
class Request:
    file_id: str
    query: dict[str, str]
    range: str | None
    status: int = 0


class FakeDrive:
    """``with FakeDrive() as drive: drive.files["ID"] = DriveFile(b"...")`` then ``drive.url("ID")``."""

    def __init__(self) -> None:
        self.files: dict[str, DriveFile] = {}
        self.requests: list[Request] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}/download"

    def url(self, file_id: str) -> str:
        """The file's Drive link, as sig builds it (answered here under :meth:`route`)."""
        return f"https://drive.google.com/uc?{urlencode({'id': file_id})}"

    def mirror_url(self, file_id: str) -> str:
        """A plain link to this server: a mirror, not Drive."""
        return f"{self.base}?{urlencode({'id': file_id, 'export': 'download'})}"

    def route(self, send: Callable) -> Callable:
        """``requests``' ``HTTPAdapter.send`` that answers Drive's hosts from this server."""
        root = self.base.removesuffix("download")

        def routed(adapter, request, *args, **kwargs):
            for host in DRIVE_HOSTS:
                if request.url.startswith(host):
                    request.url = root + request.url[len(host):]
            return send(adapter, request, *args, **kwargs)
        return routed

    def __enter__(self) -> "FakeDrive":
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def _confirmed(file: DriveFile, query: dict[str, str]) -> bool:
    if file.confirm == "form":
        return query.get("confirm") == "t" and query.get("uuid") == file.uuid
    return query.get("confirm") == file.uuid[:8]


def _handler(drive: FakeDrive) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            request = Request(query.get("id", ""), query, self.headers.get("Range"))
            drive.requests.append(request)
            file = drive.files.get(request.file_id) if parts.path in ("/download", "/uc") else None
            if file is None:
                request.status = 404
                return self._page(404, NOT_FOUND_PAGE)
            if file.busy:
                file.busy -= 1
                request.status = 503
                return self._page(503, BUSY_PAGE)
            if file.quota:
                request.status = 200
                return self._page(200, QUOTA_PAGE)
            if file.confirm and not _confirmed(file, query):
                request.status = 200
                way = CONFIRM_WAYS[file.confirm].format(id=request.file_id, uuid=file.uuid, token=file.uuid[:8],
                                                        action=drive.base)
                return self._page(200, WARNING_PAGE.format(id=request.file_id, name=file.name, way=way))
            self._file(file, request)

        def _page(self, status: int, html: str) -> None:
            body = html.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _file(self, file: DriveFile, request: Request) -> None:
            size = len(file.content)
            start = 0
            if request.range and file.honour_range:
                start = int(request.range.removeprefix("bytes=").split("-")[0])
            if start >= size and size:
                request.status = 416
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = file.content[start:]
            request.status = 206 if start else 200
            self.send_response(request.status)
            self.send_header("Content-Type", file.content_type)
            self.send_header("Content-Disposition", f'attachment; filename="{file.name}"')
            self.send_header("Content-Length", str(len(body)))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            self.end_headers()
            file.transfers += 1
            if file.transfers <= len(file.drops):
                self.wfile.write(body[:file.drops[file.transfers - 1]])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler
