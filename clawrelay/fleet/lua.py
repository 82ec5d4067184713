"""The fleet's Lua scripts: each change that must happen whole happens in one of them.

Redis runs a script alone, so no other relay sees half of one. Each is sent whole (EVAL: a few
hundred bytes, and nothing to load again after a Redis restart). Keys are passed in KEYS and
share the fleet's hash tag (see `keys`); MEMBERSHIP alone builds node keys from their names.
"""

from __future__ import annotations

# `now`: Redis's clock in ms, as a decimal string (the scripts that stamp or compare an attempt's
# start read it, so every relay's reading of that age is in one clock)
_NOW = """
local t = redis.call('TIME')
local now = string.format('%.0f', t[1] * 1000 + math.floor(t[2] / 1000))
"""

# KEYS: leader, epoch, yielded, events. ARGV: node, ttl_ms, now_ms, maxlen.
# → {held (0/1), token, newly elected (0/1)}. A new token is announced in the same script: a
# reply lost on the way back (the next round reads "renewed") loses no `elected` event.
LEASE = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local n, t = string.match(cur, '^(%S+) (%d+)$')
  if n == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {1, tonumber(t), 0}
  end
  return {0, tonumber(t) or 0, 0}
end
if redis.call('GET', KEYS[3]) == ARGV[1] then
  return {0, 0, 0}
end
local t = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. t, 'PX', ARGV[2])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*', 'event', 'elected', 'node', ARGV[1],
  'by', ARGV[1], 'token', t, 'at_ms', ARGV[3])
return {1, t, 1}
"""

# KEYS: leader. ARGV: node, token.  Let the lease go if it is still ours. → 1 if it was.
RESIGN = """
if redis.call('GET', KEYS[1]) == ARGV[1] .. ' ' .. ARGV[2] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

# KEYS: leader, yielded. ARGV: yield_ms.  `fleet elect`: the leader's lease ends now, and it
# waits out one round so another node takes it. → the node that held it, or false.
ELECT = """
local cur = redis.call('GET', KEYS[1])
if not cur then return false end
local n = string.match(cur, '^(%S+) ')
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], n, 'PX', ARGV[1])
return n
"""

# KEYS: leader, members, seen, events. ARGV: node, token, now_ms, node-key prefix, maxlen.
# The leader's round: which nodes joined and which left since the last one. Fenced: a node whose
# lease passed to another (it paused, its lease expired) changes nothing. → {joined..., '', left...}
# or false when not the leader.
MEMBERSHIP = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] .. ' ' .. ARGV[2] then return false end
local alive = {}
for _, n in ipairs(redis.call('HKEYS', KEYS[3])) do
  if redis.call('EXISTS', ARGV[4] .. n) == 1 then alive[n] = true end
end
local joined, left = {}, {}
for n, _ in pairs(alive) do
  if redis.call('SISMEMBER', KEYS[2], n) == 0 then
    redis.call('SADD', KEYS[2], n)
    table.insert(joined, n)
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*', 'event', 'joined', 'node', n,
      'by', ARGV[1], 'token', ARGV[2], 'at_ms', ARGV[3])
  end
end
for _, n in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if not alive[n] then
    redis.call('SREM', KEYS[2], n)
    table.insert(left, n)
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*', 'event', 'left', 'node', n,
      'by', ARGV[1], 'token', ARGV[2], 'at_ms', ARGV[3])
  end
end
local out = joined
table.insert(out, '')
for _, n in ipairs(left) do table.insert(out, n) end
return out
"""

# KEYS: offered, result, stream, streams. ARGV: group, origin, then the entry's field/value pairs.
# Offer a message to the fleet once: → the entry's id, 'offered' (it was already), 'settled'.
OFFER = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 'settled' end
if redis.call('EXISTS', KEYS[1]) == 1 then return 'offered' end
redis.pcall('XGROUP', 'CREATE', KEYS[3], ARGV[1], '0', 'MKSTREAM')
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
local id = redis.call('XADD', KEYS[3], '*', unpack(fields))
redis.call('SET', KEYS[1], ARGV[2] .. ' ' .. id)
redis.call('SADD', KEYS[4], KEYS[3])
return id
"""

# KEYS: lock, result, attempt, stream, offered. ARGV: holder ("NODE INSTANCE"), ttl_ms, entry id.
# Take a message to deliver it. → {'settled'} | {'held', holder, now} | {'ok', attempt-marker or
# '', now}: `now` is Redis's clock (ms), the one an attempt marker's start is in (see MARK).
# An entry gone from its stream was settled (PUBLISH and EXPIRE delete it with the result), even
# when its sender has read and forgotten the result since this relay read the entry.
CLAIM = (
    _NOW
    + """
if redis.call('EXISTS', KEYS[2]) == 1 then return {'settled'} end
if #redis.call('XRANGE', KEYS[4], ARGV[3], ARGV[3]) == 0 then return {'settled'} end
local offered = redis.call('GET', KEYS[5])  -- "ORIGIN ENTRY": another entry is a stale duplicate
if not offered or string.sub(offered, -#ARGV[3] - 1) ~= ' ' .. ARGV[3] then return {'settled'} end
if redis.call('GET', KEYS[1]) == ARGV[1] then  -- ours already: the reply to a first run was lost
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {'ok', redis.call('GET', KEYS[3]) or '', now}
end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {'held', redis.call('GET', KEYS[1]) or '', now}
end
return {'ok', redis.call('GET', KEYS[3]) or '', now}
"""
)

# KEYS: lock, attempt. ARGV: holder, the marker's JSON after its opening brace. Before the first
# attempt leaves. Its start is stamped with Redis's clock, so the relay that finds it after a
# crash judges its age by one clock, not two machines' (a skew of a minute would make a resend
# look harmless past a gateway's idempotency window). → the marker as stored, or false when the
# lock is no longer ours (then nothing is tried).
MARK = (
    _NOW
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
local marker = '{"started_ms": ' .. now .. ', ' .. ARGV[2]
redis.call('SET', KEYS[2], marker)
return marker
"""
)

# KEYS: lock. ARGV: holder, ttl_ms. Keep delivering. → 1, or 0 when the lock is gone.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS: lock, attempt. ARGV: holder, this relay's attempt record ('' if it wrote none, or the
# record is another live relay's: then the lock alone goes). Not delivered and nothing left: the
# next relay may try. The attempt record goes if it is this relay's, even when the lock expired
# meanwhile (else the next relay would wait on it for ever).
RELEASE = """
if ARGV[2] ~= '' and redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('DEL', KEYS[2])
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

# KEYS: result, lock, attempt, stream, offered. ARGV: holder, entry id, group, keep_ms, status,
# node, via, at_ms, detail. The message's outcome, once: a second outcome (a relay that lost its
# lock while delivering) is added as `also`, never silently dropped. The same holder publishing
# again is the same outcome (its first reply was lost: Redis stopped, or the connection dropped,
# after running it), and changes nothing. The result is kept while its sender has not read it
# (`offered:ID` stands until then), however long that relay is away; else for keep_ms.
PUBLISH = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'holder') ~= ARGV[1] then
    redis.call('HSET', KEYS[1], 'also', ARGV[6] .. ': ' .. ARGV[5] .. ' via ' .. ARGV[7])
  end
else
  redis.call('HSET', KEYS[1], 'status', ARGV[5], 'node', ARGV[6], 'via', ARGV[7], 'at_ms', ARGV[8],
    'detail', ARGV[9], 'holder', ARGV[1])
end
if redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
if ARGV[2] ~= '' then
  redis.call('XACK', KEYS[4], ARGV[3], ARGV[2])
  redis.call('XDEL', KEYS[4], ARGV[2])
end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
redis.call('DEL', KEYS[3])
return 1
"""

# KEYS: result, lock, stream, leader, attempt, offered. ARGV: leader value, entry id, group,
# keep_ms, node, at_ms, detail. The leader's expiry of one entry: only when nothing holds it and
# nothing settled it; `ambiguous`, not dead, when an attempt began and was never settled (it may
# have arrived). The result is kept as PUBLISH keeps it.
EXPIRE = """
if redis.call('GET', KEYS[4]) ~= ARGV[1] then return -1 end
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local status, why, node = 'dead', ARGV[7], ARGV[5]
local began = redis.call('GET', KEYS[5])
if began then
  status, why = 'ambiguous', 'an attempt began there and was never settled, then the message expired'
  local ok, marker = pcall(cjson.decode, began)
  if ok and type(marker) == 'table' and marker.node then node = marker.node end
end
redis.call('HSET', KEYS[1], 'status', status, 'node', node, 'via', '', 'at_ms', ARGV[6],
  'detail', why)
redis.call('DEL', KEYS[5])
if redis.call('EXISTS', KEYS[6]) == 0 then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
redis.call('XACK', KEYS[3], ARGV[3], ARGV[2])
redis.call('XDEL', KEYS[3], ARGV[2])
return 1
"""

# KEYS: offered, result, lock, attempt, stream. ARGV: group, keep_ms. `outbox retry|purge ID
# --take-back`: the sender takes an offered message back from the fleet. → {'settled', status,
# node, via, detail, also, at_ms} (the fleet has its outcome: recorded, not taken back) |
# {'held', holder} (a relay delivers it now) | {'withdrawn', attempt-marker or ''}: the entry is
# gone from its stream (so no relay claims it: CLAIM finds it settled), and a marker says an
# attempt began that was never settled. The marker stays (for keep_ms), so running it again (a
# reply lost) answers the same, and a relay that gets the message again still judges that attempt.
WITHDRAW = """
local r = redis.call('HGETALL', KEYS[2])
if #r > 0 then
  local h = {}
  for i = 1, #r, 2 do h[r[i]] = r[i + 1] end
  return {'settled', h.status or '', h.node or '', h.via or '', h.detail or '', h.also or '', h.at_ms or '0'}
end
local holder = redis.call('GET', KEYS[3])
if holder then return {'held', holder} end
local offered = redis.call('GET', KEYS[1])
if offered then
  local entry = string.match(offered, ' (%S+)$')
  if entry then
    redis.pcall('XACK', KEYS[5], ARGV[1], entry)
    redis.call('XDEL', KEYS[5], entry)
  end
end
redis.call('DEL', KEYS[1])
local began = redis.call('GET', KEYS[4])
if began then redis.call('PEXPIRE', KEYS[4], ARGV[2]) end
return {'withdrawn', began or ''}
"""
