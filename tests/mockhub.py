"""A local stand-in for the Hugging Face Hub's download and upload APIs, serving repositories from a folder.

    python -m tests.mockhub --root DIR --port 8123        # then HF_ENDPOINT=http://127.0.0.1:8123

`DIR/<org>/<name>/...` is served as the model repo `<org>/<name>`, `DIR/datasets/<org>/<name>/...` as the dataset
repo, `DIR/spaces/<org>/<name>/...` as the Space. Misses answer 404 with `X-Error-Code: EntryNotFound` as the Hub
does. Uploads follow the protocol of `huggingface_hub`'s `create_repo` / `create_commit` / `upload_folder`: every
file is "regular" (base64 inside the NDJSON commit), so no LFS or Xet storage is involved. Writes need an
`Authorization` header; a private repo answers 401 to reads without one. `GET /_mock/requests` lists the requests
seen so far, so a test can tell that a refused upload never reached the server.
"""

import argparse
import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response


COMMIT = "0123456789abcdef0123456789abcdef01234567"
KINDS = {"models", "datasets", "spaces"}


def git_blob_oid(data: bytes) -> str:
    """What the Hub calls a regular file's oid; the client compares it to skip unchanged files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def create_app(root: Path) -> FastAPI:
    app = FastAPI()
    private: set[Path] = set()
    commits: dict[Path, str] = {}  # repo folder -> its last commit (COMMIT for repos that were never pushed to)
    seen: list[str] = []

    @app.middleware("http")
    async def log_requests(request: Request, call_next):
        if not request.url.path.startswith("/_mock/"):
            seen.append(f"{request.method} {request.url.path}")
        return await call_next(request)

    @app.get("/_mock/requests")
    def requests_seen():
        return seen

    def repo_path(org: str, name: str, kind: str = "models") -> Path:
        return (root / org / name) if kind == "models" else (root / kind / org / name)

    def repo_dir(org: str, name: str, kind: str = "models") -> Path | None:
        path = repo_path(org, name, kind)
        return path if path.is_dir() else None

    def not_found():
        return JSONResponse({"error": "Repository not found"}, status_code=404,
                            headers={"X-Error-Code": "RepoNotFound"})

    def unauthorized():
        message = "Invalid username or password."
        return JSONResponse({"error": message}, status_code=401,
                            headers={"X-Error-Code": "RepoNotFound", "X-Error-Message": message})

    def hidden(repo: Path | None, request: Request) -> bool:
        """A private repo is invisible without a token (the Hub answers 401, as for a missing repo)."""
        return repo in private and "authorization" not in request.headers

    # ---- download side ------------------------------------------------------------------------------------------
    def info(org, name, request, kind="models"):
        repo = repo_dir(org, name, kind)
        if repo is None:
            return not_found()
        if hidden(repo, request):
            return unauthorized()
        files = sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file())
        return {"id": f"{org}/{name}", "modelId": f"{org}/{name}", "sha": commits.get(repo, COMMIT),
                "private": repo in private, "siblings": [{"rfilename": f} for f in files]}

    @app.get("/api/models/{org}/{name}")
    @app.get("/api/models/{org}/{name}/revision/{revision}")
    def model_info(org: str, name: str, request: Request, revision: str = "main"):
        return info(org, name, request)

    @app.get("/api/datasets/{org}/{name}")
    @app.get("/api/datasets/{org}/{name}/revision/{revision}")
    def dataset_info(org: str, name: str, request: Request, revision: str = "main"):
        return info(org, name, request, "datasets")

    @app.api_route("/datasets/{org}/{name}/resolve/{revision}/{path:path}", methods=["GET", "HEAD"])
    def resolve_dataset(org: str, name: str, revision: str, path: str, request: Request):
        return serve(repo_dir(org, name, "datasets"), path, request)

    def tree(repo: Path | None, path: str, recursive: bool, request: Request):
        if repo is None:
            return not_found()
        if hidden(repo, request):
            return unauthorized()
        base = repo / path
        if not base.exists():
            return JSONResponse({"error": "Entry not found"}, status_code=404,
                                headers={"X-Error-Code": "EntryNotFound"})
        sha = commits.get(repo, COMMIT)
        entries = []
        for p in sorted(base.rglob("*") if recursive else base.iterdir()):
            rel = str(p.relative_to(repo))
            entries.append({"type": "directory", "path": rel, "oid": sha} if p.is_dir()
                           else {"type": "file", "path": rel, "size": p.stat().st_size, "oid": sha})
        return entries

    @app.get("/api/models/{org}/{name}/tree/{revision}")
    @app.get("/api/models/{org}/{name}/tree/{revision}/{path:path}")
    def model_tree(org: str, name: str, revision: str, request: Request, path: str = "", recursive: bool = False):
        return tree(repo_dir(org, name), path, recursive, request)

    @app.get("/api/datasets/{org}/{name}/tree/{revision}")
    @app.get("/api/datasets/{org}/{name}/tree/{revision}/{path:path}")
    def dataset_tree(org: str, name: str, revision: str, request: Request, path: str = "", recursive: bool = False):
        return tree(repo_dir(org, name, "datasets"), path, recursive, request)

    @app.api_route("/{org}/{name}/resolve/{revision}/{path:path}", methods=["GET", "HEAD"])
    def resolve(org: str, name: str, revision: str, path: str, request: Request):
        return serve(repo_dir(org, name), path, request)

    def serve(repo: Path | None, path: str, request: Request):
        if hidden(repo, request):
            return unauthorized()
        file = repo / path if repo is not None else None
        sha = commits.get(repo, COMMIT)
        if file is None or not file.is_file():
            code = "RepoNotFound" if repo is None else "EntryNotFound"
            return Response(status_code=404, headers={"X-Error-Code": code, "X-Repo-Commit": sha})
        etag = hashlib.sha256(file.read_bytes()).hexdigest()
        headers = {"X-Repo-Commit": sha, "ETag": f'"{etag}"', "Content-Length": str(file.stat().st_size)}
        if request.method == "HEAD":
            return Response(status_code=200, headers=headers)
        return FileResponse(file, headers=headers)

    # ---- upload side --------------------------------------------------------------------------------------------
    def writable(kind: str, org: str, name: str, request: Request) -> Path | JSONResponse:
        """The repo folder a write goes to, or the error the Hub would answer."""
        if "authorization" not in request.headers:
            return unauthorized()
        repo = repo_dir(org, name, kind) if kind in KINDS else None
        return repo if repo is not None else not_found()

    @app.post("/api/repos/create")
    async def create_repo(request: Request):
        if "authorization" not in request.headers:
            return unauthorized()
        body = await request.json()
        kind = f"{body.get('type') or 'model'}s"
        org, name = body.get("organization"), body["name"]
        if org is None or kind not in KINDS:
            return JSONResponse({"error": "the mock needs an organization and a model, dataset or space"},
                                status_code=400)
        repo = repo_path(org, name, kind)
        prefix = "" if kind == "models" else f"{kind}/"
        url = f"{str(request.base_url).rstrip('/')}/{prefix}{org}/{name}"
        if repo.is_dir():
            return JSONResponse({"error": "You already created this repo", "url": url}, status_code=409)
        repo.mkdir(parents=True)
        if body.get("visibility") == "private" or body.get("private"):
            private.add(repo)
        return {"url": url, "name": f"{org}/{name}", "id": f"{org}/{name}"}

    @app.post("/api/validate-yaml")
    async def validate_yaml(request: Request):
        import yaml
        from huggingface_hub import RepoCard

        body = await request.json()
        try:
            RepoCard(body["content"])
        except (ValueError, yaml.YAMLError) as error:
            return JSONResponse({"errors": [{"message": str(error)}], "warnings": []}, status_code=400)
        return {"errors": [], "warnings": []}

    @app.post("/api/{kind}/{org}/{name}/preupload/{revision}")
    async def preupload(kind: str, org: str, name: str, revision: str, request: Request):
        repo = writable(kind, org, name, request)
        if not isinstance(repo, Path):
            return repo
        files = []
        for entry in (await request.json())["files"]:
            existing = repo / entry["path"]
            oid = git_blob_oid(existing.read_bytes()) if existing.is_file() else None
            files.append({"path": entry["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": oid})
        return {"files": files, "commitOid": commits.get(repo, COMMIT)}

    @app.post("/api/{kind}/{org}/{name}/commit/{revision}")
    async def commit(kind: str, org: str, name: str, revision: str, request: Request):
        repo = writable(kind, org, name, request)
        if not isinstance(repo, Path):
            return repo
        payload = await request.body()
        writes, deletes = {}, []
        for line in payload.splitlines():
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                continue
            target = (repo / value["path"]).resolve()
            if not target.is_relative_to(repo.resolve()) or target == repo.resolve():
                return JSONResponse({"error": f"bad path {value['path']!r}"}, status_code=400)
            if key == "file" and value.get("encoding") == "base64":
                writes[target] = base64.b64decode(value["content"])
            elif key in ("deletedFile", "deletedFolder"):
                deletes.append(target)
            else:
                return JSONResponse({"error": f"the mock takes regular files only, not {key!r}"}, status_code=400)
        for target in deletes:
            if target.is_dir():
                shutil.rmtree(target)
            elif target.is_file():
                target.unlink()
        for target, data in writes.items():  # each file appears whole or not at all
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        commits[repo] = hashlib.sha1(commits.get(repo, COMMIT).encode() + payload).hexdigest()
        prefix = "" if kind == "models" else f"{kind}/"
        url = f"{str(request.base_url).rstrip('/')}/{prefix}{org}/{name}/commit/{commits[repo]}"
        return {"commitUrl": url, "commitOid": commits[repo], "success": True, "pullRequestUrl": None}

    return app


@contextmanager
def running(root: Path):
    """The mock Hub serving `root` in its own process on a free loopback port; yields its URL once it answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "tests.mockhub", "--root", str(root), "--port", str(port)],
                              cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{url}/_mock/requests", timeout=1)
                break
            except OSError:
                if server.poll() is not None:
                    break
                time.sleep(0.1)
        else:
            server.kill()
        if server.poll() is not None:
            raise RuntimeError(f"mock Hub did not start: {server.stdout.read()}")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(Path(args.root)), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
