"""A local stand-in for the Hugging Face Hub's download API, serving repositories from a folder.

    python -m tests.mockhub --root DIR --port 8123        # then HF_ENDPOINT=http://127.0.0.1:8123

`DIR/<org>/<name>/...` is served as the model repo `<org>/<name>`, `DIR/datasets/<org>/<name>/...` as the dataset
repo, at one fixed commit. Requests are logged to
stdout, misses answer 404 with `X-Error-Code: EntryNotFound` as the Hub does.
"""

import argparse
import hashlib
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response


COMMIT = "0123456789abcdef0123456789abcdef01234567"


def create_app(root: Path) -> FastAPI:
    app = FastAPI()

    def repo_dir(org: str, name: str, kind: str = "models") -> Path | None:
        path = (root / org / name) if kind == "models" else (root / kind / org / name)
        return path if path.is_dir() else None

    def info(org, name, kind="models"):
        repo = repo_dir(org, name, kind)
        if repo is None:
            return JSONResponse({"error": "Repository not found"}, status_code=404,
                                headers={"X-Error-Code": "RepoNotFound"})
        files = sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file())
        return {"id": f"{org}/{name}", "modelId": f"{org}/{name}", "sha": COMMIT, "private": False,
                "siblings": [{"rfilename": f} for f in files]}

    @app.get("/api/models/{org}/{name}")
    def model_info(org: str, name: str):
        return info(org, name)

    @app.get("/api/models/{org}/{name}/revision/{revision}")
    def model_info_revision(org: str, name: str, revision: str):
        return info(org, name)

    @app.get("/api/datasets/{org}/{name}")
    @app.get("/api/datasets/{org}/{name}/revision/{revision}")
    def dataset_info(org: str, name: str, revision: str = "main"):
        return info(org, name, "datasets")

    @app.api_route("/datasets/{org}/{name}/resolve/{revision}/{path:path}", methods=["GET", "HEAD"])
    def resolve_dataset(org: str, name: str, revision: str, path: str, request: Request):
        return serve(repo_dir(org, name, "datasets"), path, request)

    def tree(repo: Path | None, path: str, recursive: bool):
        if repo is None:
            return JSONResponse({"error": "Repository not found"}, status_code=404)
        base = repo / path
        if not base.exists():
            return JSONResponse({"error": "Entry not found"}, status_code=404, headers={"X-Error-Code": "EntryNotFound"})
        entries = []
        for p in sorted(base.rglob("*") if recursive else base.iterdir()):
            rel = str(p.relative_to(repo))
            entries.append({"type": "directory", "path": rel, "oid": COMMIT} if p.is_dir()
                           else {"type": "file", "path": rel, "size": p.stat().st_size, "oid": COMMIT})
        return entries

    @app.get("/api/models/{org}/{name}/tree/{revision}")
    @app.get("/api/models/{org}/{name}/tree/{revision}/{path:path}")
    def model_tree(org: str, name: str, revision: str, path: str = "", recursive: bool = False):
        return tree(repo_dir(org, name), path, recursive)

    @app.get("/api/datasets/{org}/{name}/tree/{revision}")
    @app.get("/api/datasets/{org}/{name}/tree/{revision}/{path:path}")
    def dataset_tree(org: str, name: str, revision: str, path: str = "", recursive: bool = False):
        return tree(repo_dir(org, name, "datasets"), path, recursive)

    @app.api_route("/{org}/{name}/resolve/{revision}/{path:path}", methods=["GET", "HEAD"])
    def resolve(org: str, name: str, revision: str, path: str, request: Request):
        return serve(repo_dir(org, name), path, request)

    def serve(repo: Path | None, path: str, request: Request):
        file = repo / path if repo is not None else None
        if file is None or not file.is_file():
            code = "RepoNotFound" if repo is None else "EntryNotFound"
            return Response(status_code=404, headers={"X-Error-Code": code, "X-Repo-Commit": COMMIT})
        etag = hashlib.sha256(file.read_bytes()).hexdigest()
        headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{etag}"', "Content-Length": str(file.stat().st_size)}
        if request.method == "HEAD":
            return Response(status_code=200, headers=headers)
        return FileResponse(file, headers=headers)

    return app


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(Path(args.root)), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
