"""A deterministic OpenAI-compatible model on loopback, so real gateway agent turns complete.

    fake_model.py PORT PIDFILE [PROMPTLOG]
Answers GET /v1/models and POST /v1/chat/completions (streamed or not) with "ACK: <the last user
message>", after stripping what OpenClaw wraps around it (internal-context blocks, the
"[Sat 2026-11-21 01:25 UTC] " stamp, the trailing "Runtime:" line). A message containing
"[[delay=SECONDS]]" is answered that much later, for tests of replies that come too late. A turn
whose prompt carries system events ("System: [time] text", what `wake` queues) is answered
"ACK: [event: text] …", as an agent would mention them, so the event shows in the session's history.
A request whose last user message contains "[[fail]]" (a system event's text included) is refused
with HTTP 400, so the gateway's turn fails.
A user message "[[relay TARGET]] TEXT" makes it follow the clawrelay skill as a model that takes
SKILL.md literally would: it reads the skill's file at the location the system prompt lists,
takes the `exec` argument block under "## Send a message", puts TARGET and TEXT in for
`<TARGET>` and `<MESSAGE>` as JSON string content, calls `exec` with exactly that, and answers
"RELAYED: " and what exec returned. Without the skill in its prompt it answers "NO SKILL".
With PROMPTLOG, the text of every request's messages is appended to it (one JSON string a line),
so a test can see what reached the model, a system event included. Standard library only; binds 127.0.0.1 and nothing else.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INTERNAL = re.compile(r"<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>.*?<<<END_OPENCLAW_INTERNAL_CONTEXT>>>", re.S)
STAMP = re.compile(r"^\[[A-Z][a-z]{2} \d{4}-\d{2}-\d{2} [^\]]*\] ")
EVENT = re.compile(r'System: \[[^\]]*\] ((?:[^"\\]|\\.)*)')  # inside a JSON-quoted context line


def text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def events(messages: list[dict]) -> list[str]:
    """System events in the last user message, one line each."""
    for m in reversed(messages):
        if m.get("role") == "user":
            return [" ".join(e.replace("\\n", " ").split()) for e in EVENT.findall(text_of(m.get("content")))]
    return []


def last_user(messages: list[dict]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            t = STAMP.sub("", INTERNAL.sub("", text_of(m.get("content"))).strip())
            t = t.split("\n\nRuntime: agent=")[0].strip()
            if t:
                return t
    return ""


RELAY = re.compile(r"\[\[relay ([^\]]+)\]\] (.*)", re.S)
SKILL = re.compile(
    r"<name>clawrelay</name>\s*<description>.*?</description>\s*<location>(.*?)</location>", re.S
)


def relay_step(messages: list[dict]) -> tuple[str, dict] | str | None:
    """The skill-following model's next move: a tool call (name, arguments), a final text, or
    None when this is not a relay request."""
    asked = [
        i
        for i, m in enumerate(messages)
        if m.get("role") == "user" and RELAY.search(text_of(m.get("content")))
    ]
    if not asked:
        return None
    start = asked[-1]
    request = text_of(messages[start].get("content"))
    target, text = RELAY.search(request).groups()
    text = text.split("\n\nRuntime: agent=")[0]
    tools = [m for m in messages[start + 1 :] if m.get("role") == "tool"]
    if not tools:
        system = "\n".join(
            text_of(m.get("content")) for m in messages if m.get("role") in ("system", "developer")
        )
        found = SKILL.search(system)
        return ("read", {"path": found.group(1).strip()}) if found else "NO SKILL"
    if len(tools) == 1:
        skill = text_of(tools[0].get("content"))
        block = skill.split("## Send a message", 1)[1].split("```json\n", 1)[1].split("\n```", 1)[0]
        filled = block.replace("<TARGET>", json.dumps(target)[1:-1]).replace(
            "<MESSAGE>", json.dumps(text)[1:-1]
        )
        return ("exec", json.loads(filled))
    return "RELAYED: " + text_of(tools[-1].get("content"))[:2000]


def last_user_raw(messages: list[dict]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            return text_of(m.get("content"))
    return ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _json(self, code: int, obj: object) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._json(
            200, {"object": "list", "data": [{"id": "fake-model", "object": "model", "owned_by": "t"}]}
        )

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if not self.path.rstrip("/").endswith("/chat/completions"):
            return self._json(404, {"error": {"message": f"no route {self.path}"}})
        if os.environ.get("FAKE_MODEL_REQUESTS"):
            with open(os.environ["FAKE_MODEL_REQUESTS"], "a") as log:
                log.write(json.dumps(body) + "\n")
        user = last_user(body.get("messages") or [])
        if len(sys.argv) > 3:
            with open(sys.argv[3], "a") as log:
                log.write(
                    json.dumps("\n".join(text_of(m.get("content")) for m in body.get("messages") or []))
                    + "\n"
                )
        if "[[fail]]" in last_user_raw(body.get("messages") or []):
            return self._json(
                400, {"error": {"message": "fake model: asked to fail", "type": "invalid_request_error"}}
            )
        if delay := re.search(r"\[\[delay=([0-9.]+)\]\]", user):
            time.sleep(float(delay.group(1)))
        seen = "".join(f"[event: {e}] " for e in events(body.get("messages") or []))
        reply = ("ACK: " + seen + " ".join(user.split()))[:600]
        base = {"id": "chatcmpl-" + uuid.uuid4().hex[:20], "created": int(time.time()), "model": "fake-model"}
        message: dict = {"role": "assistant", "content": reply}
        finish = "stop"
        step = relay_step(body.get("messages") or [])
        if isinstance(step, str):
            message["content"] = step
        elif step is not None:
            name, arguments = step
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_" + uuid.uuid4().hex[:12],
                        "type": "function",
                        "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)},
                    }
                ],
            }
            finish = "tool_calls"
        self._answer(base, body, message, finish)

    def _answer(self, base: dict, body: dict, message: dict, finish: str) -> None:
        """One assistant message (text or tool calls), whole or as a stream of two chunks."""
        usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        if not body.get("stream"):
            return self._json(
                200,
                {
                    **base,
                    "object": "chat.completion",
                    "usage": usage,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                },
            )
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        chunk = {**base, "object": "chat.completion.chunk"}
        delta = {k: v for k, v in message.items() if v is not None}
        if "tool_calls" in delta:
            delta["tool_calls"] = [{"index": i, **c} for i, c in enumerate(delta["tool_calls"])]
        for d, f in ((delta, None), ({}, finish)):
            event = {**chunk, "choices": [{"index": 0, "delta": d, "finish_reason": f}]}
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        self.wfile.write(
            f"data: {json.dumps({**chunk, 'choices': [], 'usage': usage})}\n\ndata: [DONE]\n\n".encode()
        )
        self.wfile.flush()


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    with open(sys.argv[2] + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(sys.argv[2] + ".tmp", sys.argv[2])
    server.serve_forever()
