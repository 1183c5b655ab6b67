"""A small client for the recommendations API: submit, then poll with backoff until the request finishes.

``python -m infra.client recommend --user 19 [--url URL] [--k 10]``, or ``--ratings '{"1": 5, "50": 4}'``,
``--similar-to 1``, ``--users 1 2 3``; ``python -m infra.client status REQUEST_ID``. Against the deployed API add
``--api-key KEY`` (sent as ``x-api-key``). The URL and key default to ``$RECOMMENDER_API_URL`` and
``$RECOMMENDER_API_KEY``, else to the running local stack's (``python -m infra.local`` writes them to
``artifacts/local-stack.json``). Waiting is long-polling (``?wait=S``): one call returns as soon as the request is
finished. Standard library only, so it runs anywhere.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.api import FINISHED, MAX_WAIT_S

DEFAULT_URL = "http://127.0.0.1:8765"
# Written by a running `python -m infra.local`: {"url", "api_key"} ($RECOMMENDER_LOCAL_CONNECTION moves it).
LOCAL_CONNECTION_ENV = "RECOMMENDER_LOCAL_CONNECTION"
LOCAL_CONNECTION = Path(__file__).resolve().parents[1] / "artifacts" / "local-stack.json"


def local_connection_file() -> Path:
    return Path(os.environ.get(LOCAL_CONNECTION_ENV) or LOCAL_CONNECTION)


MIN_ASK_S = 0.5


def local_connection(path: Path | None = None) -> tuple[str | None, str | None]:
    """(url, api key) of the running local stack, or (None, None)."""
    try:
        found = json.loads((path or local_connection_file()).read_text())
        return found.get("url"), found.get("api_key")
    except (OSError, ValueError, AttributeError):
        return None, None


MY_REQUESTS = "/me/requests"  # where a signed-in person's requests are read back


class ApiError(Exception):
    """An HTTP error answer: status, and the API's error code and message."""

    def __init__(self, status: int, code: str, message: str, body: Any = None) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status, self.code, self.message, self.body = status, code, message, body


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: Any  # parsed JSON, or the text if it is not JSON


class Client:
    """The API at ``base_url`` (e.g. ``http://127.0.0.1:8765`` or ``https://abc.execute-api.../prod``)."""

    def __init__(
        self, base_url: str, api_key: str | None = None, timeout_s: float = 10.0, token: str | None = None
    ) -> None:
        """``token``: a signed-in person's ID token, sent in ``Authorization`` (the ``/me`` routes need it)."""
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.token = token

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | dict | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> HttpResponse:
        """One HTTP call; never raises for an HTTP error status (tests inspect those)."""
        url = path if path.startswith("http") else self.base_url + path
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        data = data.encode() if isinstance(data, str) else data
        all_headers = {"Accept": "application/json"}
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        if self.api_key:
            all_headers["x-api-key"] = self.api_key
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        all_headers.update(headers or {})
        req = urllib.request.Request(url, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout_s or self.timeout_s) as resp:
                status, raw, resp_headers = resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as err:
            status, raw, resp_headers = err.code, err.read(), dict(err.headers)
        try:
            parsed = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            parsed = raw.decode(errors="replace")
        return HttpResponse(status, resp_headers, parsed)

    @staticmethod
    def _check(resp: HttpResponse, expected: int) -> dict:
        if resp.status != expected:
            err = resp.body.get("error", {}) if isinstance(resp.body, dict) else {}
            raise ApiError(resp.status, err.get("code", "http_error"), err.get("message", str(resp.body)), resp.body)
        return resp.body

    def submit(self, body: dict, idempotency_key: str | None = None) -> dict:
        """POST /recommendations; returns ``{request_id, status, status_url}``."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self._check(self.request("POST", "/recommendations", body, headers), 202)

    def post_events(self, user_id: int | str, events: list[dict]) -> dict:
        """POST /events: a user's new ratings (``movie_id``, ``rating``, optional ``timestamp``, ``event_id``), used
        by their next recommendation; returns what was stored."""
        return self._check(self.request("POST", "/events", {"user_id": user_id, "events": events}), 200)

    def status(self, request_id: str, wait_s: int = 0, route: str = "/recommendations") -> dict:
        """GET /recommendations/{request_id} (or ``route``/{request_id}, e.g. ``/me/requests``); ``wait_s`` > 0
        long-polls (answers once finished, or after wait_s)."""
        query = f"?wait={wait_s}" if wait_s > 0 else ""
        resp = self.request("GET", f"{route}/{request_id}{query}", timeout_s=self.timeout_s + wait_s)
        return self._check(resp, 200)

    def wait(self, request_id: str, timeout_s: float = 60.0, route: str = "/recommendations") -> dict:
        """Long-poll until COMPLETED or FAILED; TimeoutError after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            asked = time.monotonic()
            doc = self.status(request_id, wait_s=max(1, min(MAX_WAIT_S, int(deadline - asked))), route=route)
            if doc["status"] in FINISHED:
                return doc
            if time.monotonic() >= deadline:
                raise TimeoutError(f"request {request_id} still {doc['status']} after {timeout_s:g}s")
            # PENDING at once (a server that does not long-poll): do not ask again at once
            time.sleep(max(0.0, MIN_ASK_S - (time.monotonic() - asked)))

    def recommend(self, body: dict, timeout_s: float = 60.0, idempotency_key: str | None = None) -> dict:
        """Submit and wait: the final status document."""
        return self.wait(self.submit(body, idempotency_key)["request_id"], timeout_s)

    # A signed-in person's own routes (the client's ``token`` says who).

    def me(self) -> dict:
        """GET /me: the account and the user id its data are kept under."""
        return self._check(self.request("GET", "/me"), 200)

    def my_recommendations(self, options: dict | None = None, timeout_s: float = 60.0) -> dict:
        """POST /me/recommendations and wait: the final status document."""
        submitted = self._check(self.request("POST", "/me/recommendations", options or {}), 202)
        return self.wait(submitted["request_id"], timeout_s, route=MY_REQUESTS)

    def my_profile(self, timeout_s: float = 60.0) -> dict:
        """POST /me/profile and wait: the final status document."""
        submitted = self._check(self.request("POST", "/me/profile"), 202)
        return self.wait(submitted["request_id"], timeout_s, route=MY_REQUESTS)

    def post_my_events(self, events: list[dict]) -> dict:
        """POST /me/events: the signed-in person's new ratings."""
        return self._check(self.request("POST", "/me/events", {"events": events}), 200)

    def forget_me(self) -> dict:
        """DELETE /me: the person's ratings, requests and results, and the account's link."""
        return self._check(self.request("DELETE", "/me"), 200)


# ---------------------------------------------------------------------------------------------- display


def reason_text(m: dict) -> str | None:
    """A movie's reasons in words (``None`` when it has none): the rated movies with a positive share, how many
    people liked both movies, or that the movie is popular."""
    reasons = m.get("reasons") or []
    rated = [r for r in reasons if r["kind"] == "rated" and r["share"] > 0]
    if rated:
        named = [f"{r.get('title') or 'movie ' + str(r['movie_id'])} {r['rating']:g}" for r in rated]
        return "because you rated " + ", ".join(named)
    for r in reasons:
        if r["kind"] == "liked_together":
            return f"{r['users']:,} people liked both"
        if r["kind"] == "factors":
            return f"close in the model's tastes (factor cosine {r['share']:.2f})"
        if r["kind"] == "popular":
            return f"popular: {r['users']:,} ratings"
    return "from the model's view of the movie more than any one rating" if reasons or "share_baseline" in m else None


def _movie_line(rank: int, m: dict) -> str:
    title = m.get("title") or f"movie {m['movie_id']}"
    year = f" ({m['year']})" if m.get("year") and f"({m['year']})" not in title else ""
    genres = f"  [{', '.join(m['genres'][:3])}]" if m.get("genres") else ""
    scores = []
    if "match" in m:
        scores.append(f"match {math.floor(m['match'] * 10) / 10:.1f}%")  # cut, as the page does: 99.96 is not 100
    if "predicted_rating" in m:
        scores.append(f"predicted {m['predicted_rating']:.2f}")
    if "rating" in m:
        scores.append(f"rated {m['rating']:g}")
    if "score" in m and "predicted_rating" not in m and "match" not in m:
        scores.append(f"score {m['score']:.3g}")
    line = f"  {rank:>3}. {title}{year}{genres}" + (f"  ({', '.join(scores)})" if scores else "")
    why = reason_text(m)
    return f"{line}\n         {why}" if why else line


def _variant(res: dict) -> str:
    """Which model made a list: the served one, or an experiment's candidate (with its version)."""
    variant = res.get("variant", "served")
    if res.get("experiment"):
        return f" [{variant} model {res['model_version']}, experiment {res['experiment']}]"
    return f" [{variant} model]"


def _user_lines(res: dict) -> list[str]:
    who = f"user {res['user_id']}" if "user_id" in res else "new user"
    lines = [f"{who}: {res['strategy']}{_variant(res)}"]
    if res.get("unknown_movies"):
        lines.append(f"  unknown movie ids ignored: {', '.join(map(str, res['unknown_movies']))}")
    if res.get("history"):
        lines.append("  rated highly:")
        lines += [_movie_line(i, m) for i, m in enumerate(res["history"], 1)]
        lines.append("  recommended:")
    lines += [_movie_line(i, m) for i, m in enumerate(res["items"], 1)]
    return lines


def format_status(doc: dict) -> str:
    """A readable rendering of a status document."""
    head = f"request {doc['request_id']} ({doc['kind']}): {doc['status']}"
    if doc.get("model_version"):
        head += f", model {doc['model_version']}"
    lines = [head]
    if doc["status"] == "FAILED":
        lines.append(f"  error {doc['error']['code']}: {doc['error']['message']}")
    result = doc.get("result")
    if result is None:
        return "\n".join(lines)
    if result["strategy"] not in ("batch", "personalized", "popular", "cold_start"):
        lines[0] += _variant(result)
    if result["strategy"] == "similar":
        lines.append(f"movies similar to {_movie_line(0, result['movie']).split('. ', 1)[1]}")
        lines += [_movie_line(i, m) for i, m in enumerate(result["items"], 1)]
    elif result["strategy"] == "batch":
        for res in result["results"]:
            lines += _user_lines(res)
    else:
        lines += _user_lines(result)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- CLI


def build_body(args: argparse.Namespace) -> dict:
    body: dict[str, Any] = {}
    if args.user is not None:
        body["user_id"] = _id(args.user)
    if args.ratings is not None:
        body["ratings"] = json.loads(args.ratings)
    if args.similar_to is not None:
        body["similar_to"] = _id(args.similar_to)
    if args.users:
        body["user_ids"] = [_id(u) for u in args.users]
    for name in ("k", "genres", "exclude_genres"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    if args.include_seen:
        body["exclude_seen"] = False
    if args.no_metadata:
        body["include_metadata"] = False
    if args.history:
        body["include_history"] = True
    return body


def _id(text: str) -> int | str:
    return int(text) if text.lstrip("-").isdigit() else text


def main(argv: list[str] | None = None) -> int:
    common = argparse.ArgumentParser(add_help=False)
    local_url, local_key = local_connection()
    env_url = os.environ.get("RECOMMENDER_API_URL")
    common.add_argument("--url", default=env_url or local_url or DEFAULT_URL, help="API base URL")
    common.add_argument(
        "--api-key",
        default=os.environ.get("RECOMMENDER_API_KEY") or (None if env_url else local_key),
        help="sent as x-api-key (default: $RECOMMENDER_API_KEY, else the running local stack's)",
    )
    common.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the result")
    common.add_argument("--json", action="store_true", help="print the raw status document")
    parser = argparse.ArgumentParser(prog="python -m infra.client", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("recommend", parents=[common], help="submit a request and wait for its result")
    kind = rec.add_mutually_exclusive_group(required=True)
    kind.add_argument("--user", help="a known user id")
    kind.add_argument("--ratings", help='a new user\'s ratings as JSON, e.g. \'{"1": 5, "50": 4}\'')
    kind.add_argument("--similar-to", help="a movie id")
    kind.add_argument("--users", nargs="+", help="several user ids (a batch)")
    rec.add_argument("--k", type=int)
    rec.add_argument("--genres", nargs="+")
    rec.add_argument("--exclude-genres", nargs="+")
    rec.add_argument("--include-seen", action="store_true", help="allow movies the user has rated")
    rec.add_argument("--no-metadata", action="store_true", help="ids and scores only")
    rec.add_argument("--history", action="store_true", help="also show the user's highest-rated movies")
    rec.add_argument("--idempotency-key")
    st = sub.add_parser("status", parents=[common], help="print a request's status")
    st.add_argument("request_id")
    args = parser.parse_args(argv)

    client = Client(args.url, args.api_key)
    try:
        if args.command == "status":
            doc = client.status(args.request_id)
        else:
            try:
                body = build_body(args)
            except json.JSONDecodeError as exc:
                parser.error(f"--ratings is not JSON: {exc}")
            accepted = client.submit(body, args.idempotency_key)
            print(f"submitted {accepted['request_id']}; polling {accepted['status_url']}", file=sys.stderr)
            doc = client.wait(accepted["request_id"], args.timeout)
    except ApiError as exc:
        print(f"error: HTTP {exc.status} {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    except (TimeoutError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(doc, indent=2) if args.json else format_status(doc))
    return 0 if doc["status"] != "FAILED" else 1


if __name__ == "__main__":
    sys.exit(main())
