"""What the studio refuses before a request reaches its API, and how it says so: the request body
limit (413), and the one-line summary of a request the API cannot take (422). Every refusal is
JSON `{"error": message}`, and no message repeats more than a short prefix of what was sent.
"""
from __future__ import annotations

import json
from typing import Any, Awaitable, Callable, Iterable, Mapping

MAX_BODY = 4 << 20  # bytes: the API takes small JSON objects (a lyric line is at most 2000 characters)
SHOWN = 40  # characters of a sent value a message may repeat

Scope = Mapping[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


def shown(value: Any) -> str:
    """A short, printable prefix of a value someone sent."""
    quote = isinstance(value, str)
    text = (value if quote else repr(value)).encode("ascii", "backslashreplace").decode("ascii")
    out = repr(text[:SHOWN]) if quote else text[:SHOWN]
    return out if len(text) <= SHOWN else f"{out}... ({len(text)} characters)"


async def send_error(send: Send, status: int, message: str) -> None:
    body = error_body(message)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})


class TooLarge(Exception):
    """The body went over the limit while it was read."""


def too_large_message(limit: int) -> str:
    return (f"413 request body too large: the studio takes at most {limit // (1 << 20)} MB per request: "
            "send the page's own small JSON requests")


class BodyLimit:
    """ASGI middleware: a body over `limit` bytes is refused with 413, from its Content-Length
    before anything is read, or, without one (chunked), as soon as the bytes read pass the limit:
    the rest is never read, so at most one more chunk than the limit is ever held."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or ()).get(b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                await send_error(send, 400, f"Content-Length {shown(length.decode('latin-1'))}: not a number of "
                                            "bytes: send a well-formed HTTP request")
                return
            if int(length) > self.limit:
                await send_error(send, 413, too_large_message(self.limit))
                return
        read, over, started = 0, False, False

        async def limited_receive() -> Message:
            nonlocal read, over
            if over:
                raise TooLarge()
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > self.limit:
                    over = True
                    raise TooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over:  # whatever the app made of the cut-off body, the answer is 413
                if not started:
                    started = True
                    await send_error(send, 413, too_large_message(self.limit))
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except TooLarge:
            pass
        if over and not started:
            await send_error(send, 413, too_large_message(self.limit))


EXAMPLES = {"/api/pick": '{"line": 2, "variant": 1}', "/api/retime": '{"line": 2, "start": 12.5}',
            "/api/jobs": '{"kind": "variants", "line": 2, "count": 2}'}


def invalid_request(path: str, errors: Iterable[Mapping[str, Any]]) -> str:
    """One line for a request body the API cannot take: the first problem (its field, what is
    wrong, a short prefix of the value sent), how many more, and an example of a good body."""
    errors = list(errors)
    example = EXAMPLES.get(path)
    fix = f"send a JSON object like {example}" if example else "send a JSON object as the page does"
    if not errors:
        return f"{path}: the request body is not valid: {fix}"
    first = errors[0]
    kind = str(first.get("type", ""))
    where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
    if kind == "json_invalid":
        problem = "the request body is not valid JSON"
    elif kind == "missing" and not where:
        problem = "the request has no JSON body"
    else:
        problem = f"{where or 'the body'}: {first.get('msg', 'not valid')}"
        if kind != "missing" and "input" in first:
            problem += f" (got {shown(first['input'])})"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{path}: {problem}{more}: {fix}"
