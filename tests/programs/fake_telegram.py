"""A local Bot API server for tests: getMe, getChat and sendMessage, with Telegram's real errors.

    fake_telegram.py DIR

Reads DIR/scenario.json once:
    {"token": "123:abc", "bot": {"id": 123, "username": "relay_bot", "first_name": "Relay"},
     "chats": {"42": {"type": "private", "username": "alice", "first_name": "Alice"}, ...},
     "faults": [{"method": "sendMessage", "status": 429, "retry_after": 2, "times": 1}, ...]}
A chat may be "bot" (sendMessage: 403 bot can't send messages to bots), "blocked", "kicked",
"hidden" (getChat: chat not found), "migrated_to" (a supergroup id), "threads" (forum topics).
A fault applies to the next matching requests (`times`, default 1), in order: "status" (with
"retry_after" for 429), "delay" (seconds, then the normal answer), "drop": "before" | "after"
(close the connection without an answer, before or after the message is stored), "garbage": true
(200 with a body that is not JSON, several lines of an HTML error page).

Writes DIR/port once listening on 127.0.0.1, DIR/requests.jsonl (every request: method, params,
time) and DIR/messages.jsonl (every message that arrived: chat, thread, text as rendered, raw).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

DIR = Path(sys.argv[1])
SCENARIO = json.loads((DIR / "scenario.json").read_text())
TOKEN = SCENARIO["token"]
BOT = {
    "id": 123456,
    "is_bot": True,
    "first_name": "Relay",
    "username": "relay_test_bot",
    **SCENARIO.get("bot", {}),
}
CHATS: dict[str, dict] = SCENARIO.get("chats", {})
FAULTS: list[dict] = [dict(f, times=f.get("times", 1)) for f in SCENARIO.get("faults", [])]
LOCK = threading.Lock()
NEXT_ID = [100]
RESERVED = set("_*[]()~`>#+-=|{}.!")
GIFTS = {
    "unlimited_gifts": False,
    "limited_gifts": False,
    "unique_gifts": False,
    "premium_subscription": False,
    "gifts_from_channels": False,
}


class ApiError(Exception):
    def __init__(self, code: int, description: str, parameters: dict | None = None) -> None:
        self.code, self.description, self.parameters = code, description, parameters


def append(name: str, entry: dict) -> None:
    with LOCK, open(DIR / name, "a") as f:
        f.write(json.dumps(entry, ensure_ascii=False) + "\n")


def take_fault(method: str) -> dict | None:
    with LOCK:
        for f in FAULTS:
            if f["times"] > 0 and f.get("method", method).lower() == method.lower():
                f["times"] -= 1
                return f
    return None


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def render_md2(text: str) -> str:
    """MarkdownV2 as Telegram parses it, for the entities clawrelay could produce."""
    out, i, open_ = [], 0, []
    while i < len(text):
        c = text[i]
        if c == "\\":
            if i + 1 == len(text):
                raise ApiError(400, "Bad Request: can't parse entities: Can't find end of the entity")
            out.append(text[i + 1])
            i += 2
            continue
        marker = next((m for m in ("__", "||", "*", "_", "~") if text.startswith(m, i)), None)
        if marker:
            if open_ and open_[-1] == marker:
                open_.pop()
            else:
                open_.append(marker)
            i += len(marker)
            continue
        if c in RESERVED:
            raise ApiError(
                400,
                f"Bad Request: can't parse entities: Character '{c}' is reserved and must be "
                "escaped with the preceding '\\'",
            )
        out.append(c)
        i += 1
    if open_:
        raise ApiError(
            400,
            f"Bad Request: can't parse entities: Can't find end of the entity starting with '{open_[-1]}'",
        )
    return "".join(out)


def find_chat(chat_id: str) -> tuple[str, dict]:
    if chat_id.startswith("@"):
        for key, chat in CHATS.items():
            if chat.get("username", "").lower() == chat_id[1:].lower():
                return key, chat
    elif chat_id in CHATS:
        return chat_id, CHATS[chat_id]
    raise ApiError(400, "Bad Request: chat not found")


def chat_object(key: str, chat: dict) -> dict:
    fields = ("type", "title", "username", "first_name", "last_name", "is_forum")
    return {"id": int(key), **{k: chat[k] for k in fields if k in chat}}


def get_chat(params: dict) -> dict:
    key, chat = find_chat(params.get("chat_id", ""))
    if chat.get("hidden"):
        raise ApiError(400, "Bad Request: chat not found")
    return {
        **chat_object(key, chat),
        "accent_color_id": 0,
        "max_reaction_count": 11,
        "accepted_gift_types": GIFTS,
    }


def send_message(params: dict, drop_after: bool) -> dict:
    key, chat = find_chat(params.get("chat_id", ""))
    if chat.get("bot"):
        raise ApiError(403, "Forbidden: bot can't send messages to bots")
    if chat.get("blocked"):
        raise ApiError(403, "Forbidden: bot was blocked by the user")
    if chat.get("kicked"):
        raise ApiError(403, "Forbidden: bot was kicked from the group chat")
    if "migrated_to" in chat:
        raise ApiError(
            400,
            "Bad Request: group chat was upgraded to a supergroup chat",
            {"migrate_to_chat_id": chat["migrated_to"]},
        )
    raw = params.get("text", "")
    text = render_md2(raw) if params.get("parse_mode", "").lower() == "markdownv2" else raw
    if not text.strip():
        raise ApiError(400, "Bad Request: message text is empty")
    if units(text) > 4096:
        raise ApiError(400, "Bad Request: message is too long")
    thread = params.get("message_thread_id")
    if thread is not None and int(thread) not in chat.get("threads", []):
        raise ApiError(400, "Bad Request: message thread not found")
    with LOCK:
        NEXT_ID[0] += 1
        message_id = NEXT_ID[0]
    append(
        "messages.jsonl",
        {
            "message_id": message_id,
            "chat_id": int(key),
            "thread_id": thread,
            "text": text,
            "raw": raw,
            "parse_mode": params.get("parse_mode"),
        },
    )
    if drop_after:
        raise ConnectionAbortedError
    message = {
        "message_id": message_id,
        "date": int(time.time()),
        "chat": chat_object(key, chat),
        "from": BOT,
        "text": text,
    }
    if thread is not None:
        message["message_thread_id"] = int(thread)
    return message


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.do_POST()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        if "json" in (self.headers.get("Content-Type") or ""):
            params = {
                k: v if isinstance(v, str) else json.dumps(v) for k, v in json.loads(body or "{}").items()
            }
        else:
            params = dict(parse_qsl(body, keep_blank_values=True))
        prefix, _, method = self.path.lstrip("/").partition("/")
        append(
            "requests.jsonl",
            {"method": method, "params": params, "path_ok": prefix == f"bot{TOKEN}", "t": time.time()},
        )
        fault = take_fault(method)
        if fault and fault.get("drop") == "before":
            self.close_connection = True
            return
        if fault and "delay" in fault:
            time.sleep(fault["delay"])
        if fault and fault.get("garbage"):
            self.answer_raw(200, b"<html>\n<body>502 Bad Gateway</body>\n</html>\n", "text/html")
            return
        try:
            if fault and "status" in fault:
                raise fault_error(fault)
            if prefix != f"bot{TOKEN}":
                raise ApiError(401, "Unauthorized")
            name = method.lower()
            if name == "getme":
                result = BOT
            elif name == "getchat":
                result = get_chat(params)
            elif name == "sendmessage":
                result = send_message(params, drop_after=bool(fault and fault.get("drop") == "after"))
            else:
                raise ApiError(404, "Not Found")
            self.answer(200, {"ok": True, "result": result})
        except ConnectionAbortedError:
            self.close_connection = True
        except ApiError as e:
            doc = {"ok": False, "error_code": e.code, "description": e.description}
            if e.parameters:
                doc["parameters"] = e.parameters
            self.answer(e.code, doc)

    def answer(self, code: int, doc: dict) -> None:
        self.answer_raw(code, json.dumps(doc).encode(), "application/json")

    def answer_raw(self, code: int, data: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def fault_error(fault: dict) -> ApiError:
    status = fault["status"]
    if status == 429:
        after = fault.get("retry_after", 1)
        return ApiError(429, f"Too Many Requests: retry after {after}", {"retry_after": after})
    phrases = {500: "Internal Server Error", 502: "Bad Gateway", 401: "Unauthorized"}
    return ApiError(status, fault.get("description", phrases.get(status, "Error")))


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
(DIR / "port.tmp").write_text(str(server.server_address[1]))
os.replace(DIR / "port.tmp", DIR / "port")
server.serve_forever()
