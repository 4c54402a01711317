"""Maps a request's method and raw path to an emulator route.

API paths live under ``/speech-to-text/job/v1`` (flow ``stt``) and
``/speech-to-text-translate/job/v1`` (flow ``translate``); presigned storage under
``/storage/{job_id}/{input|output}/{name}``. Path segments are URL-unescaped after splitting, so
an escaped ``/`` inside a job id cannot change the route. A trailing slash is not accepted
(the path is then unknown, 404).
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import unquote

_PREFIXES = (("/speech-to-text/job/v1", "stt"), ("/speech-to-text-translate/job/v1", "translate"))
_STORAGE = "/storage/"
_STORAGE_METHODS = {"PUT": "storage-put", "GET": "storage-get"}


class Match(NamedTuple):
    """The result of routing one request.

    ``allow`` is the method the route accepts; ``method_ok`` is False when the path is known
    but the method is not (405). ``job_id``/``blob``/``area`` are set for job-scoped and storage
    paths (``area`` is ``input`` or ``output``).
    """

    route: str
    flow: str
    method_ok: bool = True
    allow: str = ""
    job_id: str = ""
    blob: str = ""
    area: str = ""


_UNKNOWN = Match("unknown", "unknown")


def _api(route: str, flow: str, method: str, allow: str, job_id: str = "") -> Match:
    return Match(route, flow, method == allow, allow, job_id)


def classify(method: str, path: str) -> Match:
    """Route ``method`` + raw ``path`` (no query)."""
    if path.startswith(_STORAGE):
        parts = path[len(_STORAGE) :].split("/")
        if len(parts) == 3 and parts[0] and parts[2] and parts[1] in ("input", "output"):
            job_id, blob = unquote(parts[0]), unquote(parts[2])
            route = _STORAGE_METHODS.get(method)
            if route is None:
                return Match("unknown", "storage", False, "GET, PUT", job_id, blob, parts[1])
            return Match(route, "storage", True, method, job_id, blob, parts[1])
        return Match("unknown", "storage")
    for prefix, flow in _PREFIXES:
        if not path.startswith(prefix):
            continue
        rest = path[len(prefix) :]
        if rest == "":
            return _api("initiate", flow, method, "POST")
        if rest == "/upload-files":
            return _api("upload-files", flow, method, "POST")
        if rest == "/download-files":
            return _api("download-files", flow, method, "POST")
        parts = rest.split("/")
        if len(parts) == 3 and parts[0] == "" and parts[1]:
            if parts[2] == "start":
                return _api("start", flow, method, "POST", unquote(parts[1]))
            if parts[2] == "status":
                return _api("status", flow, method, "GET", unquote(parts[1]))
        return Match("unknown", flow)
    return _UNKNOWN
