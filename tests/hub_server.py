"""A small local stand-in for the Hugging Face Hub, over real HTTP (stdlib http.server).

It serves model repos the way the Hub does for huggingface_hub's client: repo info
(`/api/models/{repo}/revision/{rev}` with siblings and sizes), the tree listing
(`/api/models/{repo}/tree/{rev}`), and files (`HEAD`/`GET /{repo}/resolve/{rev}/{file}` with
X-Repo-Commit, ETag, Content-Length and Range support). Every request is recorded so tests can
check, e.g., that a resumed download asked for a byte range.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional
from urllib.parse import unquote, urlparse


@dataclass
class Request:
    method: str
    path: str
    headers: dict


@dataclass
class Repo:
    files: dict[str, bytes]
    commit: str = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class FakeHub:
    repos: dict[str, Repo] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    delay_per_chunk: float = 0.0        # seconds slept after each chunk of a file body
    chunk: int = 16 * 1024
    drop_after: dict[str, int] = field(default_factory=dict)  # file name -> bytes, once
    cdn: bool = True        # weights redirect to another host (as LFS/Xet files do on the Hub)
    # hold_after: stop sending any file body after this many bytes until `release` is set;
    # `holding` is set while a response waits there (deterministic "mid-download" moments)
    hold_after: Optional[int] = None
    release: threading.Event = field(default_factory=threading.Event)
    holding: threading.Event = field(default_factory=threading.Event)
    server: Optional[ThreadingHTTPServer] = None

    def add_folder(self, repo_id: str, folder: Path) -> Repo:
        files = {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()}
        repo = Repo(files)
        self.repos[repo_id] = repo
        return repo

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def file_gets(self, name: str) -> list[Request]:
        return [r for r in self.requests if r.method == "GET" and r.path.endswith("/" + name)]

    def start(self) -> "FakeHub":
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self.handle_any("HEAD")

            def do_GET(self):
                self.handle_any("GET")

            def send_json(self, status, payload, extra=None):
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def not_found(self, code="RepoNotFound", message="Repository not found"):
                self.send_json(404, {"error": message}, {"X-Error-Code": code,
                                                          "X-Error-Message": message})

            def handle_any(self, method):
                hub.requests.append(Request(method, self.path, dict(self.headers.items())))
                path = unquote(urlparse(self.path).path)
                info = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
                tree = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(/.*)?", path)
                resolve = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
                cdn = re.fullmatch(r"/cdn/([^/]+/[^/]+)/(.+)", path)
                if cdn:
                    repo = hub.repos.get(cdn.group(1))
                    if repo is None or cdn.group(2) not in repo.files:
                        return self.not_found("EntryNotFound", "Entry not found")
                    return self.send_file(repo, cdn.group(2), method)
                if info:
                    repo = hub.repos.get(info.group(1))
                    if repo is None:
                        return self.not_found()
                    return self.send_json(200, {
                        "id": info.group(1), "modelId": info.group(1), "sha": repo.commit,
                        "private": False, "gated": False, "disabled": False, "tags": [],
                        "siblings": [{"rfilename": name, "size": len(data),
                                      "blobId": hashlib.sha1(data).hexdigest()}
                                     for name, data in repo.files.items()]})
                if tree:
                    repo = hub.repos.get(tree.group(1))
                    if repo is None:
                        return self.not_found()
                    entries = []
                    for name, data in repo.files.items():
                        entry = {"type": "file", "path": name, "size": len(data),
                                 "oid": hashlib.sha1(data).hexdigest()}
                        if name.endswith(".safetensors"):
                            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(),
                                            "size": len(data), "pointerSize": 134}
                        entries.append(entry)
                    return self.send_json(200, entries)
                if resolve:
                    repo = hub.repos.get(resolve.group(1))
                    if repo is None:
                        return self.not_found()
                    name = resolve.group(3)
                    if name not in repo.files:
                        return self.not_found("EntryNotFound", "Entry not found")
                    if hub.cdn and name.endswith(".safetensors"):
                        return self.redirect(repo, resolve.group(1), name)
                    return self.send_file(repo, name, method)
                self.not_found()

            def redirect(self, repo, repo_id, name):
                """Like the Hub for an LFS file: 302 to a CDN host, metadata in X-Linked-*."""
                data = repo.files[name]
                port = hub.server.server_address[1]
                self.send_response(302)
                self.send_header("Location", f"http://localhost:{port}/cdn/{repo_id}/{name}")
                self.send_header("X-Repo-Commit", repo.commit)
                self.send_header("X-Linked-Etag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("ETag", f'"{hashlib.sha1(data).hexdigest()}"')
                self.send_header("Content-Length", "0")
                self.end_headers()

            def send_file(self, repo, name, method):
                data = repo.files[name]
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
                status = 200
                if match:
                    start = int(match.group(1))
                    end = int(match.group(2)) if match.group(2) else len(data) - 1
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    body = data[start:end + 1]
                    status = 206
                else:
                    body = data
                self.send_response(status)
                self.send_header("X-Repo-Commit", repo.commit)
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                if status == 206:
                    self.send_header("Content-Range",
                                     f"bytes {start}-{start + len(body) - 1}/{len(data)}")
                self.end_headers()
                if method == "HEAD":
                    return
                drop = hub.drop_after.pop(name, None)
                sent = 0
                try:
                    while sent < len(body):
                        if (hub.hold_after is not None and sent >= hub.hold_after
                                and not hub.release.is_set()):
                            hub.holding.set()
                            hub.release.wait(60)
                        if drop is not None and sent >= drop:
                            self.close_connection = True
                            self.connection.shutdown(2)
                            return
                        piece = body[sent:sent + hub.chunk]
                        self.wfile.write(piece)
                        self.wfile.flush()
                        sent += len(piece)
                        if hub.delay_per_chunk:
                            time.sleep(hub.delay_per_chunk)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
