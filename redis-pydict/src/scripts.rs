//! The Lua scripts of the write path. Each runs atomically on the server, in
//! one round trip: it changes the entries, keeps the namespace index in step
//! (scores are absolute expiry in Unix ms from the server's clock, `inf` for
//! none), prunes expired index members, and publishes the change events.

use std::sync::LazyLock;

use redis::Script;

/// The CBOR heads both kinds of write script build payloads with, put
/// before each: `cbor_head(major, len)`, the head of an item of major type
/// `major` (given as its first byte: 96 text, 128 array) and length `len`;
/// `text_head(len)`, the head of a text of `len` bytes, and
/// `cbor_uint(n)`, an unsigned integer (the `"seq"` field's value);
/// `BATCH_HEAD`, a batch message up to its events' array (WIRE.md §6.2:
/// `{"v": 1, "op": "batch", "key": null, "events": [...]}`), and
/// `BATCH_BYTES` (1 MiB), the size of events a batch grows to at most
/// (one larger event goes alone); and
/// `SEQ_LIMIT`, 2^53 - 2^32, the sequence number from which both refuse the
/// counter (Lua's numbers are doubles, exact up to 2^53, and no unit makes
/// 2^32 changes).
const CBOR_LUA: &str = r#"
local char, floor, sub = string.char, math.floor, string.sub
local SEQ_LIMIT = 9007194959773696
local function cbor_head(major, len)
  if len < 24 then return char(major + len) end
  if len < 256 then return char(major + 24, len) end
  if len < 65536 then return char(major + 25, floor(len / 256), len % 256) end
  return char(major + 26, floor(len / 16777216) % 256, floor(len / 65536) % 256, floor(len / 256) % 256, len % 256)
end
local function text_head(len) return cbor_head(96, len) end
local BATCH_HEAD, BATCH_BYTES = '\164\97v\1\98op\101batch\99key\246\102events', 1048576
local function cbor_uint(n)
  if n < 24 then return char(n) end
  if n < 256 then return char(24, n) end
  if n < 65536 then return char(25, floor(n / 256), n % 256) end
  if n < 4294967296 then
    return char(26, floor(n / 16777216) % 256, floor(n / 65536) % 256, floor(n / 256) % 256, n % 256)
  end
  local hi, lo = floor(n / 4294967296), n % 4294967296
  return char(27, floor(hi / 16777216) % 256, floor(hi / 65536) % 256, floor(hi / 256) % 256, hi % 256,
    floor(lo / 16777216) % 256, floor(lo / 65536) % 256, floor(lo / 256) % 256, lo % 256)
end
"#;

/// Common prologue. It reads the namespace metadata `{ns}#meta` (see
/// `meta.rs`): a script given no log of its own logs to
/// `{ns}#log` with the cap the namespace declares (`log_maxlen`), so every
/// writer of a namespace with a durable log appends to it; a script given
/// a log of its own declares it there (HSET, only when the declared cap differs,
/// and only once something is appended). Then it checks, before anything
/// is written, that every key the script may touch holds the type it needs
/// (index: zset, metadata: hash, log: stream, entries: string; absent is
/// fine): a mismatch is returned as the error `PYDICTTYPE <type> <key>`
/// (a declared cap that is not a positive integer: `PYDICTMETA`), so a
/// failed write changes nothing (a Redis script is not rolled back when a
/// command in it fails). Entry keys
/// are checked with TYPE one by one when there are few; many are checked a
/// thousand at a time by EXISTS (none exists: nothing to check) and, if some
/// exist, MGET (which answers nil for a non-string): TYPE is asked only
/// where the two counts differ, to name the culprit. Then it
/// defines `now()` (server time in ms), `prune()` (drops index members whose
/// expiry has passed; each script calls it after its own checks),
/// `emit(channel, payload)`, which publishes the event and/or appends it to
/// the durable log, and `write_entry(...)`, the one way an entry is written
/// with a TTL mode (value, index score from its TTL, event). The last four
/// declared keys are always the sequence number `{ns}#seq`, the durable log
/// `{ns}#log`, the metadata `{ns}#meta` and the index `{ns}#keys` (declared
/// even when unused, so that a cluster checks them before the script runs:
/// an undeclared key that is not on the node, e.g. during a slot migration,
/// fails the script mid-way), and every other declared key is an entry;
/// ARGV[1..3] are always: publish mode, the dict's own log ('' = none, else
/// the log key), its log MAXLEN (approximate). Script-specific arguments
/// follow from ARGV[4].
///
/// The namespace's sequence number: `{ns}#seq`, a string holding a decimal
/// counter that never goes down. The prelude reads it (one GET: a
/// non-string value, or one that is not a canonical decimal integer, which
/// the final INCRBY could refuse after the writes, is refused as
/// `PYDICTTYPE` before anything is written; so is a counter at or above
/// 2^53 - 2^32, which a unit's changes could take past 2^53, where Lua's
/// numbers, doubles, stop being exact: no unit makes 2^32 changes); every
/// change the script makes takes the next number
/// (`next_seq()`, called by `emit` even for a silent change), every event
/// payload carries it as an extra field `"seq"` (`with_seq`), and the script
/// ends with `finish(result)`, which sends the batched events (see below)
/// and makes one INCRBY by the number of changes.
///
/// The publish mode is '0' (no events), '1' (PUBLISH each event to its
/// channel: `{ns}#ev:<key>`, or `{ns}#ev` for `clear`) or 's' (a cluster
/// store: SPUBLISH every event to the namespace channel `{ns}#ev`, derived
/// from the index key `{ns}#keys`, when the server executing the script
/// has sharded pub/sub, i.e. `redis.REDIS_VERSION_NUM` >= 7.0.0; otherwise
/// as '1'). `publish_event(channel, payload)` applies it.
/// The publish mode may be followed by 'p' when events carry previous values,
/// then by 'b' when a sharded unit publishes its events in batches
/// (`batched`, WIRE.md §6.2): `publish_event` queues them (`batch_event`)
/// and `finish` sends what is queued (`flush`), so every unit of several
/// events sends batch messages of up to 1,000 events and `BATCH_BYTES`
/// (a batch of one goes out as the event itself).
/// `with_prev(payload, old)` adds the `"prev"` field to an event payload
/// (when previous values are asked): `[old]`, or `[]` when `old` is false
/// (there was no entry); `text_head(len)` is the CBOR head of a text of
/// `len` bytes.
const PRELUDE: &str = r#"
local idx, meta, log_key, seqkey = KEYS[#KEYS], KEYS[#KEYS - 1], KEYS[#KEYS - 2], KEYS[#KEYS - 3]
local entries = #KEYS - 4
local mode, prev = string.sub(ARGV[1], 1, 1), string.sub(ARGV[1], 2, 2) == 'p'
local publish, maxlen = mode ~= '0', ARGV[3]
local own_log = ARGV[2] ~= ''
local log = ''
if own_log then log = log_key end
local sharded = mode == 's' and (redis.REDIS_VERSION_NUM or 0) >= 458752
local batched = sharded and string.find(ARGV[1], 'b', 2, true) ~= nil
local shard_channel = string.sub(idx, 1, -5) .. 'ev'
-- Batched, the unit's events wait here and go out as batch messages
-- (flush, from finish: at the end of the unit, or when a batch is full).
local batch, batch_n, batch_bytes = {}, 0, 0
local function flush()
  if batch_n == 1 then
    redis.call('SPUBLISH', shard_channel, batch[1])
  elseif batch_n > 1 then
    redis.call('SPUBLISH', shard_channel, BATCH_HEAD .. cbor_head(128, batch_n) .. table.concat(batch, '', 1, batch_n))
  end
  batch_n, batch_bytes = 0, 0
end
local function batch_event(payload)
  if batch_n == 1000 or (batch_n > 0 and batch_bytes + #payload > BATCH_BYTES) then flush() end
  batch_n, batch_bytes = batch_n + 1, batch_bytes + #payload
  batch[batch_n] = payload
end
local function publish_event(channel, payload)
  if batched then
    batch_event(payload)
  elseif sharded then
    redis.call('SPUBLISH', shard_channel, payload)
  else
    redis.call('PUBLISH', channel, payload)
  end
end
local function wrong_type(key, want)
  local t = redis.call('TYPE', key).ok
  if t ~= 'none' and t ~= want then return 'PYDICTTYPE ' .. t .. ' ' .. key end
  return nil
end
local function non_string(keys, first, last)
  if last - first < 2 then
    for i = first, last do
      local wrong = wrong_type(keys[i], 'string')
      if wrong then return wrong end
    end
    return nil
  end
  for a = first, last, 1000 do
    local b = math.min(a + 999, last)
    local existing = redis.call('EXISTS', unpack(keys, a, b))
    if existing > 0 then
      local strings = 0
      for _, v in ipairs(redis.call('MGET', unpack(keys, a, b))) do
        if v then strings = strings + 1 end
      end
      if strings ~= existing then
        for i = a, b do
          local wrong = wrong_type(keys[i], 'string')
          if wrong then return wrong end
        end
      end
    end
  end
  return nil
end
local declared = redis.pcall('HGET', meta, 'log_maxlen')
local bad = wrong_type(idx, 'zset')
if not bad and type(declared) == 'table' then
  if not string.find(declared.err, 'WRONGTYPE', 1, true) then return redis.error_reply(declared.err) end
  bad = 'PYDICTTYPE ' .. redis.call('TYPE', meta).ok .. ' ' .. meta
end
if not bad and not own_log and declared then
  if not string.match(declared, '^[1-9][0-9]*$') then
    return redis.error_reply('PYDICTMETA ' .. meta .. ' ' .. declared)
  end
  log, maxlen = log_key, declared
end
if not bad and log ~= '' then bad = wrong_type(log, 'stream') end
if not bad then bad = non_string(KEYS, 1, entries) end
local seq_base, seq_count = 0, 0
if not bad then
  local current = redis.pcall('GET', seqkey)
  if type(current) == 'table' then
    bad = wrong_type(seqkey, 'string')
  elseif current then
    if not (current == '0' or (#current <= 16 and string.match(current, '^[1-9]%d*$')
        and tonumber(current) < SEQ_LIMIT)) then
      bad = 'PYDICTTYPE string ' .. seqkey
    else
      seq_base = tonumber(current)
    end
  end
end
if bad then return redis.error_reply(bad) end
local function next_seq()
  seq_count = seq_count + 1
  return seq_base + seq_count
end
local function finish(result)
  flush()
  if seq_count > 0 then redis.call('INCRBY', seqkey, seq_count) end
  return result
end
local function seq_head(payload)
  local first = string.byte(payload, 1)
  if first and first >= 160 and first < 183 then
    return string.char(first + 1) .. string.sub(payload, 2), true
  end
  return payload, false
end
local function with_seq(payload, n)
  local head, ok = seq_head(payload)
  if not ok then return payload end
  return head .. '\99seq' .. cbor_uint(n)
end
-- Adds "prev" (when previous values are asked) as with_seq adds "seq":
-- [old], or [] when old is false (there was no entry).
local function with_prev(payload, old)
  if not prev then return payload end
  local head, ok = seq_head(payload)
  if not ok then return payload end
  if old then return head .. '\100prev\129' .. old end
  return head .. '\100prev\128'
end
local clock
local function now()
  if not clock then
    local t = redis.call('TIME')
    clock = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return clock
end
local function prune()
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', '(' .. now())
end
local function append(payload)
  if own_log and declared ~= maxlen then
    redis.call('HSET', meta, 'log_maxlen', maxlen)
    declared = maxlen
  end
  redis.call('XADD', log, 'MAXLEN', '~', maxlen, '*', 'e', payload)
end
local function emit(channel, payload)
  local n = next_seq()
  if payload == '' then return end
  payload = with_seq(payload, n)
  if publish then publish_event(channel, payload) end
  if log ~= '' then append(payload) end
end
-- SET, with GET when previous values are asked: the old value (false: none).
local function set(...)
  local args = {...}
  if prev then args[#args + 1] = 'GET' end
  local old = redis.call('SET', unpack(args))
  return prev and old
end
local function write_entry(key, member, value, channel, payload, mode, ttl)
  if mode == 'nx' and redis.call('EXISTS', key) == 1 then return 0 end
  local old
  if ttl > 0 then
    old = set(key, value, 'PX', ttl)
    redis.call('ZADD', idx, now() + ttl, member)
  elseif mode == 'keepttl' then
    old = set(key, value, 'KEEPTTL')
    local left = redis.call('PTTL', key)
    if left > 0 then
      redis.call('ZADD', idx, now() + left, member)
    else
      redis.call('ZADD', idx, 'inf', member)
    end
  else
    old = set(key, value)
    redis.call('ZADD', idx, 'inf', member)
  end
  emit(channel, with_prev(payload, old))
  return 1
end
"#;

/// KEYS: entry keys..., seq, log, meta, index. ARGV (after the common three): the length
/// of the entry prefix (an entry key less its prefix is the member), the
/// key channel prefix, the two constant parts of a `set` event payload (see
/// `event::set_payload_frame`: the head before the key, the middle between
/// the key and the value), then the n values, in the order of KEYS. Per
/// entry only its key and value cross the wire: the member, the ZADD
/// arguments, the channel and the payload (head, the key's CBOR text
/// header, key, middle, value: byte for byte what `event::write_payload`
/// builds) are assembled here. The plain write (no TTL; any TTL the entry
/// had is cleared), a thousand entries per MSET and ZADD. It does not prune
/// the index: only TTL writes create members that expire, and the scripts
/// that handle those prune. The path of `set` and of every `set_many`
/// batch. Returns the number of entries written.
const PLAIN_BODY: &str = r#"
local n = entries
local skip, channel, head, middle = tonumber(ARGV[4]) + 1, ARGV[5], ARGV[6], ARGV[7]
local events = publish or log ~= ''
local tagged = false
if events then head, tagged = seq_head(head) end
local key_heads, low_bytes, seq_high, seq_high_of = {}, {}, '', -1
for first = 1, n, 1000 do
  local last = math.min(first + 999, n)
  local sets, members = {}, {}
  local j = 0
  for i = first, last do
    local key = KEYS[i]
    sets[j + 1], sets[j + 2] = key, ARGV[7 + i]
    members[j + 1], members[j + 2] = 'inf', sub(key, skip)
    j = j + 2
  end
  local olds
  if prev and events then olds = redis.call('MGET', unpack(KEYS, first, last)) end
  redis.call('MSET', unpack(sets))
  redis.call('ZADD', idx, unpack(members))
  if events then
    -- Per event: one concatenation and one call, or, batched, one table
    -- slot (this loop is most of a batch's server time). The parts are
    -- reused where they can be: the key's text head by length, and "seq"
    -- with its number's CBOR head and high bytes, which numbers from 256 to
    -- 2^32 - 1 share 256 at a time (only the last byte differs, taken from
    -- a table of one-byte strings).
    local logging = log ~= ''
    for k = 2, j, 2 do
      local member = members[k]
      local len = #member
      local key_head = key_heads[len]
      if not key_head then
        key_head = text_head(len)
        key_heads[len] = key_head
      end
      local payload
      if tagged then
        local s = seq_base + k / 2 + first - 1
        if s >= 256 and s < 4294967296 then
          local high = floor(s / 256)
          if high ~= seq_high_of then
            seq_high_of, seq_high = high, '\99seq' .. sub(cbor_uint(s), 1, -2)
          end
          local low = s % 256
          local low_byte = low_bytes[low]
          if not low_byte then
            low_byte = char(low)
            low_bytes[low] = low_byte
          end
          payload = head .. key_head .. member .. middle .. sets[k] .. seq_high .. low_byte
        else
          payload = head .. key_head .. member .. middle .. sets[k] .. '\99seq' .. cbor_uint(s)
        end
      else
        payload = head .. key_head .. member .. middle .. sets[k]
      end
      if olds then payload = with_prev(payload, olds[k / 2]) end
      if batched then
        batch_event(payload)
      elseif sharded then
        redis.call('SPUBLISH', shard_channel, payload)
      elseif publish then
        redis.call('PUBLISH', channel .. member, payload)
      end
      if logging then append(payload) end
    end
  end
end
seq_count = n
return finish(n)
"#;

/// The single-entry plain write, the path of almost every `set`: the
/// PLAIN script's effects (same KEYS, same checks in the same order, events
/// byte for byte) for exactly one entry, appending to the dict's own log or
/// to the one the namespace declares in `{ns}#meta`. It runs
/// without the prelude (only the CBOR helpers go before it), and the client
/// sends the parts of the event it can build, so that the server does the
/// least string work: the prelude's setup (two dozen closures, the general
/// checks) and the payload assembly cost more server time than the writes,
/// and a `set` is the operation whose cost users compare with a raw SET.
/// Checks before anything is written, in the prelude's order: index,
/// metadata, log, entry; then the sequence number is taken with INCRBY (the
/// ACL rules already allow it), which refuses a non-integer or wrong-typed
/// `{ns}#seq` before writing (a value below 1 after it, i.e. a negative
/// counter, is put back and refused).
///
/// KEYS: the entry, seq, log, meta, index (as PLAIN). ARGV: the publish
/// mode (as the prelude's, 'p' appended for previous values), the index
/// member (the key), the key's event channel (`{ns}#ev:<key>`, for PUBLISH),
/// the event payload up to the value (`event::set_payload_prefix`, its map
/// header counting `"seq"` and, with 'p', `"prev"`), the value, and the
/// length cap of the dict's own log ('' without one). With its own log, as
/// in the prelude: the cap the metadata declares is not checked but
/// replaced (HSET, just before the append) when it differs. Returns 1.
const PLAIN_ONE_BODY: &str = r#"
local key, seqkey, log, meta, idx = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local own = ARGV[6]
local t = redis.call('TYPE', idx).ok
if t ~= 'none' and t ~= 'zset' then return redis.error_reply('PYDICTTYPE ' .. t .. ' ' .. idx) end
local declared = redis.pcall('HGET', meta, 'log_maxlen')
if type(declared) == 'table' then
  if not string.find(declared.err, 'WRONGTYPE', 1, true) then return redis.error_reply(declared.err) end
  return redis.error_reply('PYDICTTYPE ' .. redis.call('TYPE', meta).ok .. ' ' .. meta)
end
local maxlen = declared
if own ~= '' then
  maxlen = own
elseif maxlen and not string.match(maxlen, '^[1-9][0-9]*$') then
  return redis.error_reply('PYDICTMETA ' .. meta .. ' ' .. maxlen)
end
if maxlen then
  t = redis.call('TYPE', log).ok
  if t ~= 'none' and t ~= 'stream' then return redis.error_reply('PYDICTTYPE ' .. t .. ' ' .. log) end
end
t = redis.call('TYPE', key).ok
if t ~= 'none' and t ~= 'string' then return redis.error_reply('PYDICTTYPE ' .. t .. ' ' .. key) end
local seq = redis.pcall('INCRBY', seqkey, 1)
if type(seq) == 'table' then
  -- Refused for the counter's type or form; any other error (OOM: this is
  -- the script's first write) is the server's own.
  local e = seq.err
  if not (string.find(e, 'WRONGTYPE', 1, true) or string.find(e, 'integer', 1, true) or string.find(e, 'overflow', 1, true)) then
    return redis.error_reply(e)
  end
  return redis.error_reply('PYDICTTYPE ' .. redis.call('TYPE', seqkey).ok .. ' ' .. seqkey)
end
if seq < 1 or seq > SEQ_LIMIT then
  redis.call('INCRBY', seqkey, -1)
  return redis.error_reply('PYDICTTYPE string ' .. seqkey)
end
local mode, value = ARGV[1], ARGV[5]
local prev = string.byte(mode, 2) == 112
local old
if prev then
  old = redis.call('SET', key, value, 'GET')
else
  redis.call('SET', key, value)
end
redis.call('ZADD', idx, 'inf', ARGV[2])
local publish = string.byte(mode, 1)
if publish == 48 and not maxlen then return 1 end
local payload = ARGV[4] .. value .. '\99seq' .. cbor_uint(seq)
if prev then
  if old then payload = payload .. '\100prev\129' .. old else payload = payload .. '\100prev\128' end
end
if publish == 115 and (redis.REDIS_VERSION_NUM or 0) >= 458752 then
  redis.call('SPUBLISH', string.sub(idx, 1, -5) .. 'ev', payload)
elseif publish ~= 48 then
  redis.call('PUBLISH', ARGV[3], payload)
end
if maxlen then
  if own ~= '' and declared ~= own then redis.call('HSET', meta, 'log_maxlen', own) end
  redis.call('XADD', log, 'MAXLEN', '~', maxlen, '*', 'e', payload)
end
return 1
"#;

/// KEYS: entry keys..., seq, log, meta, index. ARGV (after the common three): mode ('set' |
/// 'nx' | 'keepttl'), then per entry: member, value, channel, payload ('' =
/// silent), ttl_ms ('0' = none). Returns the number of entries written (with
/// 'nx', entries already present are left alone and not counted).
const SET_BODY: &str = r#"
prune()
local mode = ARGV[4]
local written = 0
for i = 1, entries do
  local a = 4 + (i - 1) * 5
  written = written + write_entry(KEYS[i], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], mode, tonumber(ARGV[a + 5]))
end
return finish(written)
"#;

/// KEYS: entry keys..., seq, log, meta, index. ARGV (after the common three): mode ('del' | 'take'), then per entry:
/// member, channel, payload. Returns, per entry, 0/1 ('del') or the old value
/// or nil ('take').
const DEL_BODY: &str = r#"
prune()
local take = ARGV[4] == 'take'
local out = {}
for i = 1, entries do
  local a = 4 + (i - 1) * 3
  local key, member, channel, payload = KEYS[i], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local existed
  local old = false
  if take or prev then
    old = redis.call('GETDEL', key)
    existed = old ~= false
    if take then out[i] = old else out[i] = existed and 1 or 0 end
  else
    out[i] = redis.call('DEL', key)
    existed = out[i] == 1
  end
  redis.call('ZREM', idx, member)
  if existed then emit(channel, with_prev(payload, old)) end
end
return finish(out)
"#;

/// KEYS: entry key, seq, log, meta, index. ARGV (after the common three): member, ttl_ms
/// ('-1' = persist), channel, payload. Returns 1 when the entry exists (and so had its TTL changed).
const EXPIRE_BODY: &str = r#"
prune()
local key, member, ttl, channel, payload = KEYS[1], ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7]
if redis.call('EXISTS', key) == 0 then
  redis.call('ZREM', idx, member)
  return 0
end
local old = prev and redis.call('GET', key)
if ttl < 0 then
  redis.call('PERSIST', key)
  redis.call('ZADD', idx, 'inf', member)
else
  redis.call('PEXPIRE', key, ttl)
  redis.call('ZADD', idx, now() + ttl, member)
end
emit(channel, with_prev(payload, old))
return finish(1)
"#;

/// KEYS: seq, log, meta, index. ARGV (after the common three): entry prefix, channel,
/// payload, limit, then (used when previous values are asked) the key
/// channel prefix and the two constant parts of a `del` event payload (see
/// `event::del_payload_frame`), then whether this call may end the clear
/// ('1', or absent) or is a part-way call ('0'). Deletes (UNLINK) up to
/// `limit` indexed entries (the first by rank when the call runs, so calls
/// applied one after the other take disjoint parts of the index) and their
/// index members, after checking that none of them holds a non-string value
/// (foreign data is never deleted: the error names it); with previous
/// values, each entry that existed first gets its `del` event carrying its
/// value. When the index is then empty and the call may end the clear, it
/// emits the clear event; otherwise, if it removed entries, it takes one
/// sequence number and publishes nothing. A part-way call never emits the
/// clear event, so `Space::clear` can send several ahead of the one that
/// may end it. Returns `{entries that existed, members left}`.
const CLEAR_BODY: &str = r#"
local prefix, channel, payload, limit = ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
local key_channel, del_head, del_middle = ARGV[8], ARGV[9], ARGV[10]
local may_end = ARGV[11] ~= '0'
local members = redis.call('ZRANGE', idx, 0, limit - 1)
local keys = {}
for i = 1, #members do keys[i] = prefix .. members[i] end
local wrong = non_string(keys, 1, #keys)
if wrong then return redis.error_reply(wrong) end
prune()
local removed = 0
for first = 1, #members, 500 do
  local last = math.min(first + 499, #members)
  if prev and (publish or log ~= '') then
    local olds = redis.call('MGET', unpack(keys, first, last))
    for j = first, last do
      local old = olds[j - first + 1]
      if old then
        local member = members[j]
        emit(key_channel .. member, with_prev(del_head .. text_head(#member) .. member .. del_middle, old))
      end
    end
  end
  removed = removed + redis.call('UNLINK', unpack(keys, first, last))
  redis.call('ZREM', idx, unpack(members, first, last))
end
local left = redis.call('ZCARD', idx)
if left == 0 and may_end then
  emit(channel, payload)
elseif removed > 0 then
  next_seq()
end
return finish({removed, left})
"#;

/// KEYS: watched entry keys..., seq, log, meta, index. ARGV (after the common three): the
/// number n of watched keys; per watched key its expected state ('0' absent,
/// '1' present) and value; the entry prefix; then per entry to write: member,
/// value, channel, payload. Writes (keeping TTLs) only if every watched key
/// still holds what the caller read: an optimistic update that needs no
/// WATCH, so it is safe on a shared cluster connection and across failovers.
/// Returns 1 when written, 0 on conflict.
const CAS_BODY: &str = r#"
local n = tonumber(ARGV[4])
for i = 1, n do
  local state, expected = ARGV[3 + 2 * i], ARGV[4 + 2 * i]
  local current = redis.call('GET', KEYS[i])
  if state == '0' then
    if current then return 0 end
  elseif current ~= expected then
    return 0
  end
end
local a = 5 + 2 * n
local prefix = ARGV[a]
for j = a + 1, #ARGV, 4 do
  local wrong = wrong_type(prefix .. ARGV[j], 'string')
  if wrong then return redis.error_reply(wrong) end
end
prune()
for j = a + 1, #ARGV, 4 do
  write_entry(prefix .. ARGV[j], ARGV[j], ARGV[j + 1], ARGV[j + 2], ARGV[j + 3], 'keepttl', 0)
end
return finish(1)
"#;

/// KEYS: seq, log, meta, index. ARGV (after the common three): entry prefix, then members. For each member, makes the
/// index agree with the keyspace: adds live string entries with their expiry,
/// removes members whose entry is gone (or is not a string). Returns
/// `{added, removed}`.
const REPAIR_BODY: &str = r#"
prune()
local prefix = ARGV[4]
local added, removed = 0, 0
for i = 5, #ARGV do
  local member = ARGV[i]
  local key = prefix .. member
  local left = redis.call('PTTL', key)
  if left == -2 or redis.call('TYPE', key).ok ~= 'string' then
    removed = removed + redis.call('ZREM', idx, member)
  else
    local score = 'inf'
    if left > 0 then score = now() + left end
    added = added + redis.call('ZADD', idx, score, member)
  end
end
return {added, removed}
"#;

/// KEYS: the sequence key `{ns}#seq`, then entry keys. Read-only: the
/// namespace's sequence number (`'0'` when the key is absent) and the values
/// of the entries (MGET: nil where absent), read in one atomic unit, so the
/// values are exactly the state after the change numbered `seq`. A foreign
/// `{ns}#seq` (not a string holding a decimal integer) is refused as
/// `PYDICTTYPE`, like in the write prelude.
const LOAD_BODY: &str = r#"
local seq = redis.pcall('GET', KEYS[1])
if type(seq) == 'table' then
  return redis.error_reply('PYDICTTYPE ' .. redis.call('TYPE', KEYS[1]).ok .. ' ' .. KEYS[1])
end
if seq and not (seq == '0' or (#seq <= 18 and string.match(seq, '^[1-9]%d*$'))) then
  return redis.error_reply('PYDICTTYPE string ' .. KEYS[1])
end
if #KEYS == 1 then return {seq or '0', {}} end
return {seq or '0', redis.call('MGET', unpack(KEYS, 2))}
"#;

/// KEYS: index. Returns the number of live entries. Read-only.
const LEN_BODY: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], now, '+inf')
"#;

/// A write script: the prelude followed by its body.
pub(crate) struct WriteScript {
    /// The full source, for EVAL inside MULTI, where EVALSHA could fail
    /// half a transaction after a script flush.
    pub(crate) source: String,
    /// The cached script, for EVALSHA (loaded when the server lacks it).
    pub(crate) script: Script,
}

impl WriteScript {
    fn new(body: &str) -> Self {
        Self::standalone(format!("{CBOR_LUA}{PRELUDE}{body}"))
    }

    /// A write script of its own source (it does its own checks).
    fn standalone(source: String) -> Self {
        let script = Script::new(&source);
        WriteScript { source, script }
    }
}

/// Plain writes without TTL (`set`, every `set_many` batch).
pub(crate) static PLAIN: LazyLock<WriteScript> = LazyLock::new(|| WriteScript::new(PLAIN_BODY));
/// One plain write without TTL by a dict without a log of its own (almost every `set`).
pub(crate) static PLAIN_ONE: LazyLock<WriteScript> =
    LazyLock::new(|| WriteScript::standalone(format!("{CBOR_LUA}{PLAIN_ONE_BODY}")));
/// Writes with a TTL, a set-if-absent or a kept TTL (`update_with`, view saves).
pub(crate) static SET: LazyLock<WriteScript> = LazyLock::new(|| WriteScript::new(SET_BODY));
/// Deletes and takes.
pub(crate) static DEL: LazyLock<WriteScript> = LazyLock::new(|| WriteScript::new(DEL_BODY));
/// Sets or removes a TTL.
pub(crate) static EXPIRE: LazyLock<WriteScript> = LazyLock::new(|| WriteScript::new(EXPIRE_BODY));
/// One batch of `clear`.
pub(crate) static CLEAR: LazyLock<WriteScript> = LazyLock::new(|| WriteScript::new(CLEAR_BODY));
/// The compare-and-set of `update_with` on a cluster.
pub(crate) static CAS: LazyLock<WriteScript> = LazyLock::new(|| WriteScript::new(CAS_BODY));
/// One batch of `repair`.
pub(crate) static REPAIR: LazyLock<WriteScript> = LazyLock::new(|| WriteScript::new(REPAIR_BODY));
/// The sequence number and entry values of a live view's load (read-only, no prelude).
pub(crate) static LOAD: LazyLock<Script> = LazyLock::new(|| Script::new(LOAD_BODY));
/// The live-entry count (read-only, no prelude).
pub(crate) static LEN: LazyLock<Script> = LazyLock::new(|| Script::new(LEN_BODY));

/// The error code a write script returns when a key holds the wrong type
/// (see the prelude), and its detail: `(found type, Redis key)`.
pub(crate) const WRONG_TYPE_CODE: &str = "PYDICTTYPE";

/// The error code a write script returns when `{ns}#meta` declares a log
/// cap that is not a positive integer; its detail: `<meta key> <value>`.
pub(crate) const BAD_META_CODE: &str = "PYDICTMETA";

/// Splits a `PYDICTTYPE` detail into the type found and the Redis key.
pub(crate) fn wrong_type_detail(detail: &str) -> Option<(&str, &str)> {
    detail.split_once(' ')
}
