"""The Lua scripts of the Redis broker: every state change of a task is one atomic script.

Every broker script gets one key, the queue's ``ready`` key, and derives the others from its
prefix: they all share the ``{app}`` hash tag, hence one Redis Cluster slot, which is what a
Cluster node checks. (Passing all fourteen keys made redis-py spend most of a call packing them.)
Time comes from the server's clock (``TIME``) so that workers on different machines agree on
leases. A final record is published on ``done:<uuid>`` for the waiters.

Layout of one queue (prefix ``qtasks:{app}:``):
    ready    ZSET  score = priority, member = 16 hex digits of a sequence number + uuid (FIFO
                   within a priority); a member whose payload is gone is a cancelled tombstone
    delayed  ZSET  score = due time (ms), member = uuid
    leases   ZSET  score = lease deadline (ms), member = uuid
    msg, prio, count, lost, owner, why   HASH uuid -> payload, priority, claims, lost claims,
                   owning worker, dead-letter reason
    dead     ZSET  score = time of death (ms), member = uuid
    wake     LIST  tokens that wake one blocked claimer each
    seq      STRING the FIFO sequence
    workers  HASH  worker id -> registry entry (JSON); alive ZSET worker id -> last heartbeat (ms)
    fin:<s>  HASH  final status -> records that became final in second ``s`` of the server's
                   clock; each expires FINISHED_KEPT seconds later (throughput, ``qtasks top``)

Every uuid in ``msg`` is in exactly one of ready, delayed, leases and dead, so the ready count is
``HLEN msg`` minus the other three; a ready member without its ``msg`` entry is a tombstone.
"""

from __future__ import annotations

__all__ = ["QUEUE_KEYS", "SCRIPTS", "SAVE", "FINISHED", "FINISHED_KEPT", "STATUSES"]

FINISHED_KEPT = 300  # seconds a per-second count of finished records is kept

QUEUE_KEYS = ("ready", "delayed", "leases", "msg", "prio", "count", "lost", "owner", "why", "dead", "wake", "seq", "workers", "alive")

_COUNT_FINISHED = f"""
local function count_finished(prefix, record, ms)
  local status = string.match(record, '^{{"status":"([^"]*)"') or '?'
  local bucket = prefix .. 'fin:' .. math.floor(ms / 1000)
  if redis.call('HINCRBY', bucket, status, 1) == 1 then redis.call('EXPIRE', bucket, {FINISHED_KEPT}) end
end
"""

_PRELUDE = _COUNT_FINISHED + """
local P = string.sub(KEYS[1], 1, -6)
local READY, DELAYED, LEASES, MSG, PRIO, COUNT, LOST = KEYS[1], P .. 'delayed', P .. 'leases', P .. 'msg', P .. 'prio', P .. 'count', P .. 'lost'
local OWNER, WHY, DEAD, WAKE, SEQ, WORKERS, ALIVE = P .. 'owner', P .. 'why', P .. 'dead', P .. 'wake', P .. 'seq', P .. 'workers', P .. 'alive'
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function wake()
  redis.call('RPUSH', WAKE, '1')
  redis.call('LTRIM', WAKE, -16, -1)
end
local function place(uuid, prio)
  local seq = redis.call('INCR', SEQ)
  redis.call('ZADD', READY, prio, string.format('%016x', seq) .. uuid)
end
local function store(uuid, record, ttl)
  if record == '' then return end
  local key = P .. 'r:' .. uuid
  if tonumber(ttl) > 0 then
    redis.call('SET', key, record, 'PX', ttl)
    redis.call('PUBLISH', P .. 'done:' .. uuid, record)
    count_finished(P, record, now_ms())
  else
    redis.call('SET', key, record)
  end
end
local function forget(uuid)
  redis.call('HDEL', MSG, uuid); redis.call('HDEL', PRIO, uuid); redis.call('HDEL', COUNT, uuid)
  redis.call('HDEL', LOST, uuid); redis.call('HDEL', OWNER, uuid); redis.call('HDEL', WHY, uuid)
  redis.call('ZREM', LEASES, uuid); redis.call('ZREM', DELAYED, uuid); redis.call('ZREM', DEAD, uuid)
end
local function leased_by(uuid, worker)
  return redis.call('ZSCORE', LEASES, uuid) and redis.call('HGET', OWNER, uuid) == worker
end
"""

_ENQUEUE = """
-- ARGV: n, then per task: uuid, priority, due (ms), payload, record
local now = now_ms()
local n = tonumber(ARGV[1])
for i = 0, n - 1 do
  local b = 2 + i * 5
  local uuid, prio, due = ARGV[b], ARGV[b + 1], tonumber(ARGV[b + 2])
  if redis.call('HSETNX', MSG, uuid, ARGV[b + 3]) == 1 then
    store(uuid, ARGV[b + 4], 0)
    redis.call('HSET', PRIO, uuid, prio)
    if due > now then redis.call('ZADD', DELAYED, due, uuid) else place(uuid, prio) end
  end
end
wake()
return n
"""

_CLAIM = """
-- ARGV: worker id, max count, lease (ms). Returns {deliveries, ms until the next due time or -1}.
local worker, max, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
for _, uuid in ipairs(redis.call('ZRANGEBYSCORE', DELAYED, '-inf', now, 'LIMIT', 0, 1000)) do
  redis.call('ZREM', DELAYED, uuid)
  place(uuid, redis.call('HGET', PRIO, uuid) or 0)
end
for _, uuid in ipairs(redis.call('ZRANGEBYSCORE', LEASES, '-inf', now, 'LIMIT', 0, 1000)) do
  redis.call('ZREM', LEASES, uuid)
  redis.call('HDEL', OWNER, uuid)
  redis.call('HINCRBY', LOST, uuid, 1)
  place(uuid, redis.call('HGET', PRIO, uuid) or 0)
end
local out = {}
while #out < max do
  local popped = redis.call('ZPOPMIN', READY, max - #out)
  if #popped == 0 then break end
  for i = 1, #popped, 2 do
    local uuid = string.sub(popped[i], 17)
    local payload = redis.call('HGET', MSG, uuid)
    -- skip tombstones (cancelled) and stale duplicates of a task that is leased or dead
    if payload and not redis.call('ZSCORE', LEASES, uuid) and not redis.call('ZSCORE', DEAD, uuid) then
      local count = redis.call('HINCRBY', COUNT, uuid, 1)
      redis.call('ZADD', LEASES, now + lease, uuid)
      redis.call('HSET', OWNER, uuid, worker)
      out[#out + 1] = {uuid, popped[i + 1], payload, count, tonumber(redis.call('HGET', LOST, uuid) or '0')}
    end
  end
end
if #out > 0 and redis.call('ZCARD', READY) > 0 then wake() end
local due = -1
for _, key in ipairs({DELAYED, LEASES}) do
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if #first > 0 then
    local wait = math.max(tonumber(first[2]) - now, 0)
    if due < 0 or wait < due then due = wait end
  end
end
return {out, due}
"""

_HEARTBEAT = """
-- ARGV: worker id, registry entry, lease (ms), uuids held...
local worker, lease = ARGV[1], tonumber(ARGV[3])
local now = now_ms()
redis.call('HSET', WORKERS, worker, ARGV[2])
redis.call('ZADD', ALIVE, now, worker)
for i = 4, #ARGV do
  if redis.call('HGET', OWNER, ARGV[i]) == worker then redis.call('ZADD', LEASES, 'XX', now + lease, ARGV[i]) end
end
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', ALIVE, '-inf', now - 3 * lease)) do
  redis.call('HDEL', WORKERS, gone)
  redis.call('ZREM', ALIVE, gone)
end
return 1
"""

_WORKERS = """
-- ARGV: lease (ms). Returns {entry, last seen (ms)} of the workers seen within three leases.
local since = now_ms() - 3 * tonumber(ARGV[1])
local out = {}
local alive = redis.call('ZRANGEBYSCORE', ALIVE, since, '+inf', 'WITHSCORES')
for i = 1, #alive, 2 do
  local entry = redis.call('HGET', WORKERS, alive[i])
  if entry then out[#out + 1] = {entry, alive[i + 1]} end
end
return out
"""

_FORGET_WORKER = """
redis.call('HDEL', WORKERS, ARGV[1])
redis.call('ZREM', ALIVE, ARGV[1])
return 1
"""

_ACK = """
-- ARGV: uuid, worker, final record ('' : none), ttl (ms). Only the lease holder may ack: a worker
-- whose lease ran out and was reclaimed (or that requeued the task) changes nothing.
if not leased_by(ARGV[1], ARGV[2]) then return 0 end
forget(ARGV[1])
store(ARGV[1], ARGV[3], ARGV[4])
return 1
"""

_REQUEUE = """
-- ARGV: uuid, worker, delay (ms), record. Only the lease holder may requeue.
local uuid, delay = ARGV[1], tonumber(ARGV[3])
if not leased_by(uuid, ARGV[2]) then return 0 end
redis.call('ZREM', LEASES, uuid)
redis.call('HDEL', OWNER, uuid)
store(uuid, ARGV[4], 0)
if delay > 0 then redis.call('ZADD', DELAYED, now_ms() + delay, uuid) else place(uuid, redis.call('HGET', PRIO, uuid) or 0) end
wake()
return 1
"""

_DEAD_LETTER = """
-- ARGV: uuid, worker, reason, final record, ttl (ms)
local uuid = ARGV[1]
if not leased_by(uuid, ARGV[2]) then return 0 end
redis.call('ZREM', LEASES, uuid)
redis.call('HDEL', OWNER, uuid)
redis.call('ZADD', DEAD, now_ms(), uuid)
redis.call('HSET', WHY, uuid, ARGV[3])
store(uuid, ARGV[4], ARGV[5])
return 1
"""

_CANCEL = """
-- ARGV: uuid, final record, ttl (ms). Only a queued, unclaimed task.
local uuid = ARGV[1]
if redis.call('HEXISTS', MSG, uuid) == 0 or redis.call('ZSCORE', LEASES, uuid) or redis.call('ZSCORE', DEAD, uuid) then
  return 0
end
forget(uuid)
store(uuid, ARGV[2], ARGV[3])
return 1
"""

_DEAD_LETTERS = """
-- ARGV: limit. Returns {uuid, reason, dead at (ms), priority, payload, claims}, oldest first.
local out = {}
local dead = redis.call('ZRANGE', DEAD, 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
for i = 1, #dead, 2 do
  local uuid = dead[i]
  out[#out + 1] = {uuid, redis.call('HGET', WHY, uuid) or '', dead[i + 1], redis.call('HGET', PRIO, uuid) or '0',
                   redis.call('HGET', MSG, uuid) or '', redis.call('HGET', COUNT, uuid) or '0'}
end
return out
"""

_REQUEUE_DEAD = """
-- ARGV: uuids (none: all). Returns the uuids queued again, with fresh counts.
local chosen = ARGV
if #chosen == 0 then chosen = redis.call('ZRANGE', DEAD, 0, -1) end
local out = {}
for _, uuid in ipairs(chosen) do
  if redis.call('ZREM', DEAD, uuid) == 1 then
    redis.call('HDEL', WHY, uuid); redis.call('HDEL', COUNT, uuid); redis.call('HDEL', LOST, uuid)
    place(uuid, redis.call('HGET', PRIO, uuid) or 0)
    out[#out + 1] = uuid
  end
end
if #out > 0 then wake() end
return out
"""

_PURGE_DEAD = """
local dead = redis.call('ZRANGE', DEAD, 0, -1)
for _, uuid in ipairs(dead) do forget(uuid) end
return #dead
"""

_PURGE = """
-- Drops queued (ready and delayed) tasks and the wake-up list; leased and dead ones stay. The
-- FIFO sequence restarts only when no task at all is left to order against.
local count = 0
for _, member in ipairs(redis.call('ZRANGE', READY, 0, -1)) do
  local uuid = string.sub(member, 17)
  if redis.call('HEXISTS', MSG, uuid) == 1 then count = count + 1; forget(uuid) end
end
for _, uuid in ipairs(redis.call('ZRANGE', DELAYED, 0, -1)) do count = count + 1; forget(uuid) end
redis.call('DEL', READY, DELAYED, WAKE)
if redis.call('HLEN', MSG) == 0 then redis.call('DEL', SEQ) end
return count
"""

STATUSES = """
-- KEYS: record keys. Returns {status, count, ...} read from the first bytes of each record.
local counts, order = {}, {}
for _, key in ipairs(KEYS) do
  local status = string.match(redis.call('GETRANGE', key, 0, 63), '^{"status":"([^"]*)"')
  if status then  -- nothing: the record expired since the SCAN
    if not counts[status] then counts[status] = 0; order[#order + 1] = status end
    counts[status] = counts[status] + 1
  end
end
local out = {}
for _, status in ipairs(order) do out[#out + 1] = status; out[#out + 1] = counts[status] end
return out
"""

_QUEUE_COUNTS = """
-- Returns {ready, delayed, leased, dead, {priority, ready count, ...}}. O(1) per distinct priority;
-- when cancelled tombstones sit in the ready set, its members are checked one by one (up to 10,000).
local delayed, leased, dead = redis.call('ZCARD', DELAYED), redis.call('ZCARD', LEASES), redis.call('ZCARD', DEAD)
local ready = redis.call('HLEN', MSG) - delayed - leased - dead
local members = redis.call('ZCARD', READY)
local by_priority = {}
if members > ready and members <= 10000 then
  local counts, order = {}, {}
  local all = redis.call('ZRANGE', READY, 0, -1, 'WITHSCORES')
  for i = 1, #all, 2 do
    local uuid = string.sub(all[i], 17)
    if redis.call('HEXISTS', MSG, uuid) == 1 and not redis.call('ZSCORE', LEASES, uuid) and not redis.call('ZSCORE', DEAD, uuid) then
      if not counts[all[i + 1]] then counts[all[i + 1]] = 0; order[#order + 1] = all[i + 1] end
      counts[all[i + 1]] = counts[all[i + 1]] + 1
    end
  end
  for _, score in ipairs(order) do by_priority[#by_priority + 1] = score; by_priority[#by_priority + 1] = counts[score] end
else
  local low = '-inf'
  for _ = 1, 1000 do
    local first = redis.call('ZRANGEBYSCORE', READY, low, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if #first == 0 then break end
    by_priority[#by_priority + 1] = first[2]
    by_priority[#by_priority + 1] = redis.call('ZCOUNT', READY, first[2], first[2])
    low = '(' .. first[2]
  end
end
return {ready, delayed, leased, dead, by_priority}
"""

_SAVE_RUNNING = """
-- ARGV: n, then per task: uuid, record. Writes the record of a task only while it is leased, so
-- a late write can never replace the final record that its ack stored.
for i = 0, tonumber(ARGV[1]) - 1 do
  local uuid = ARGV[2 + i * 2]
  if redis.call('ZSCORE', LEASES, uuid) then store(uuid, ARGV[3 + i * 2], 0) end
end
return 1
"""

SAVE = _COUNT_FINISHED + """
-- KEYS[1]: the record key (<prefix>r:<uuid>); ARGV: record, ttl (ms, 0: none), channel ('' : no one to wake)
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  local t = redis.call('TIME')
  count_finished(string.match(KEYS[1], '^(.*)r:[^:]*$'), ARGV[1], tonumber(t[1]) * 1000)
else
  redis.call('SET', KEYS[1], ARGV[1])
end
if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[3], ARGV[1]) end
return 1
"""

FINISHED = """
-- KEYS[1]: <prefix>fin; ARGV: seconds. Returns {status, count, ...}: the records that became final
-- in the last ARGV[1] seconds of the server's clock (this second included).
local t = redis.call('TIME')
local now = tonumber(t[1])
local totals, order = {}, {}
for second = now - tonumber(ARGV[1]) + 1, now do
  local counts = redis.call('HGETALL', KEYS[1] .. ':' .. second)
  for i = 1, #counts, 2 do
    if not totals[counts[i]] then totals[counts[i]] = 0; order[#order + 1] = counts[i] end
    totals[counts[i]] = totals[counts[i]] + tonumber(counts[i + 1])
  end
end
local out = {}
for _, status in ipairs(order) do out[#out + 1] = status; out[#out + 1] = totals[status] end
return out
"""

SCRIPTS = {
    name: _PRELUDE + body
    for name, body in {
        "enqueue": _ENQUEUE, "claim": _CLAIM, "heartbeat": _HEARTBEAT, "workers": _WORKERS,
        "forget_worker": _FORGET_WORKER, "ack": _ACK, "requeue": _REQUEUE, "dead_letter": _DEAD_LETTER,
        "cancel": _CANCEL, "dead_letters": _DEAD_LETTERS, "requeue_dead": _REQUEUE_DEAD,
        "purge_dead": _PURGE_DEAD, "purge": _PURGE, "save_running": _SAVE_RUNNING, "queue_counts": _QUEUE_COUNTS,
    }.items()
}
