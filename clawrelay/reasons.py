"""Every stable reason code clawrelay reports, in one enumeration.

A reason is what scripts match on (`--json`, the journal, `clawrelay log`): it never changes
between releases. Every raise site and every result names a member of `Reason`, never a bare
string, and docs/delivery.md's reason table lists exactly these (a test holds them equal), so a
code a user sees is always documented.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # -- reaching a gateway ------------------------------------------------------------------
    CONNECTION_REFUSED = "connection_refused"
    UNREACHABLE = "unreachable"
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    UNAVAILABLE = "unavailable"
    GATEWAY_RESTARTING = "gateway_restarting"
    CONNECTION_LOST = "connection_lost"
    TLS = "tls"
    AUTH = "auth"
    PAIRING_REQUIRED = "pairing_required"
    PROTOCOL_MISMATCH = "protocol_mismatch"
    MISSING_SCOPE = "missing_scope"
    UNKNOWN_METHOD = "unknown_method"
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"
    REJECTED = "rejected"
    BAD_RESPONSE = "bad_response"
    # -- any attempt -------------------------------------------------------------------------
    TIMEOUT = "timeout"
    DEADLINE = "deadline"
    INTERRUPTED = "interrupted"
    CONFIG = "config"
    INTERNAL_ERROR = "internal_error"
    # -- sessions_send, events ---------------------------------------------------------------
    NO_REPLY = "no_reply"
    TURN_FAILED = "turn_failed"
    UNCONFIRMED = "unconfirmed"
    # -- command -----------------------------------------------------------------------------
    TEMPFAIL = "tempfail"
    EXIT_STATUS = "exit_status"
    # -- memory_file -------------------------------------------------------------------------
    UNSAFE_PATH = "unsafe_path"
    IO_ERROR = "io_error"
    BUSY = "busy"
    # -- hosts and carriers (nodes_run, agent_cli, exec, sync) --------------------------------
    DENIED = "denied"
    APPROVAL_TIMEOUT = "approval_timeout"
    NODE_OFFLINE = "node_offline"
    HOST_KEY_UNKNOWN = "host_key_unknown"
    SSH_ERROR = "ssh_error"
    NOT_SUPPORTED = "not_supported"
    REMOTE_ERROR = "remote_error"
    EMBEDDED_FALLBACK = "embedded_fallback"
    BAD_OUTPUT = "bad_output"
    # -- telegram ----------------------------------------------------------------------------
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    PROXY_ERROR = "proxy_error"
    PROXY_AUTH = "proxy_auth"
    BOT_CHAT = "bot_chat"
    BLOCKED = "blocked"
    CHAT_NOT_FOUND = "chat_not_found"
    THREAD_NOT_FOUND = "thread_not_found"
    TOO_LONG = "too_long"
    BAD_MARKUP = "bad_markup"
    BAD_REQUEST = "bad_request"
    PARTIAL = "partial"
    LOOP = "loop"
    # -- sync --------------------------------------------------------------------------------
    GIT_ERROR = "git_error"
    NOT_A_REPO = "not_a_repo"
    DIRTY = "dirty"
    OTHER_BRANCH = "other_branch"
    DIVERGED = "diverged"
    LINK_EXISTS = "link_exists"
    # -- the command line and the state dir ----------------------------------------------------
    ERROR = "error"
    USAGE = "usage"
    UNKNOWN_TARGET = "unknown_target"
    HOP_LIMIT = "hop_limit"
    STATE_UNAVAILABLE = "state_unavailable"
    DISK_FULL = "disk_full"
    JOURNAL_CORRUPT = "journal_corrupt"
    IN_FLIGHT = "in_flight"
    SKILL_EDITED = "skill_edited"
    NO_FLUSHER = "no_flusher"
    RELAY_LOST = "relay_lost"
    RELAY_RUNNING = "relay_running"
    FLEET_AUTH = "fleet_auth"
    FLEET_UNREACHABLE = "fleet_unreachable"
    FLEET_ERROR = "fleet_error"
    NO_FLEET = "no_fleet"
    # -- why the outbox left a message waiting (outbox retry / flush `skipped`) ----------------
    BACKOFF = "backoff"
    AMBIGUOUS = "ambiguous"
    BEHIND_UNDELIVERED = "behind_undelivered"
    NO_LONGER_QUEUED = "no_longer_queued"
    OFFERED = "offered"
    EXPIRED = "expired"
