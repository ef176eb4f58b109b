"""Reference implementation of the redis-pydict wire format v1 (WIRE.md) in Python.

Reads and writes namespaces shared with the Rust library: get, set, delete
(each write one atomic script: type checks, entry, index, event, durable log),
items, len, subscribe (live events) and the durable log (with gap detection).
Needs `redis` (redis-py) and `cbor2` (interop/python/requirements.txt).

    d = Dict(redis.Redis.from_url("redis://127.0.0.1:6379/0"), "orders", origin="py")
    d.set("a", {"x": 1}); d.get("a"); len(d); dict(d.items())
"""
import json
import sys

import cbor2
import redis

# One write: checks every key's type before writing anything, then entry,
# index, sequence number, event and (when the writer or the namespace wants
# one) the log. The payload gets its "seq" here: map header + 1, then the field.
WRITE = """
local entry, idx, meta, log, seqkey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local op, member, value, channel, payload = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local publish, own = ARGV[6] == '1', ARGV[7]
local function check(key, want)
  local t = redis.call('TYPE', key).ok
  if t ~= 'none' and t ~= want then return 'PYDICTTYPE ' .. t .. ' ' .. key end
end
local bad = check(idx, 'zset') or check(meta, 'hash') or check(entry, 'string') or check(seqkey, 'string')
local seq = redis.call('GET', seqkey)
if not bad and seq and not (seq == '0' or (#seq <= 16 and string.match(seq, '^[1-9]%d*$')
    and tonumber(seq) + 1 < 9007199254740992)) then
  bad = 'PYDICTTYPE string ' .. seqkey
end
if bad then return redis.error_reply(bad) end
local function uint(n)
  if n < 24 then return string.char(n) end
  local head, width = 27, 8
  if n < 256 then head, width = 24, 1 elseif n < 65536 then head, width = 25, 2
  elseif n < 4294967296 then head, width = 26, 4 end
  local out = ''
  for _ = 1, width do out = string.char(n % 256) .. out; n = math.floor(n / 256) end
  return string.char(head) .. out
end
local declared = redis.call('HGET', meta, 'log_maxlen')
local maxlen = own
if maxlen == '' and declared then maxlen = declared end
if maxlen ~= '' then
  if not string.match(maxlen, '^[1-9][0-9]*$') then
    return redis.error_reply('PYDICTMETA ' .. meta .. ' ' .. maxlen)
  end
  bad = check(log, 'stream')
  if bad then return redis.error_reply(bad) end
end
local changed = 1
if op == 'set' then
  redis.call('SET', entry, value)
  redis.call('ZADD', idx, 'inf', member)
else
  changed = redis.call('DEL', entry)
  redis.call('ZREM', idx, member)
end
if changed == 1 then
  local n = redis.call('INCRBY', seqkey, 1)
  payload = string.char(string.byte(payload, 1) + 1) .. string.sub(payload, 2) .. '\\99seq' .. uint(n)
  if publish then redis.call('PUBLISH', channel, payload) end
  if maxlen ~= '' then
    if own ~= '' and declared ~= own then redis.call('HSET', meta, 'log_maxlen', own) end
    redis.call('XADD', log, 'MAXLEN', '~', maxlen, '*', 'e', payload)
  end
end
return changed
"""

# Live entries: index members whose expiry (score, ms) has not passed.
LEN = """
local t = redis.call('TIME')
return redis.call('ZCOUNT', KEYS[1], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), '+inf')
"""


def escape_glob(text):
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def parse_event(payload):
    """An event payload as a dict (v, op, key, origin, value, ttl_ms); ValueError if unusable."""
    return checked_event(cbor2.loads(payload))


def parse_message(payload):
    """A pub/sub message's events: [event], or a batch's events in order (WIRE.md 6.2)."""
    message = cbor2.loads(payload)
    if isinstance(message, dict) and message.get("v") == 1 and message.get("op") == "batch":
        if not isinstance(message.get("events"), list):
            raise ValueError("a batch without events")
        return [checked_event(event) for event in message["events"]]
    return [checked_event(message)]


def checked_event(event):
    """A decoded event map, checked and completed as WIRE.md 6.4 says."""
    if not isinstance(event, dict) or "op" not in event:
        raise ValueError("not an event payload")
    if event.get("v") != 1:
        raise ValueError("unsupported event format version %r" % event.get("v"))
    if event["op"] not in ("set", "del", "clear", "expire"):
        raise ValueError("unknown event op %r" % event["op"])
    event.setdefault("key", None)
    event.setdefault("origin", None)
    if event["op"] == "set":
        event.setdefault("value", None)
    return event


class Dict:
    def __init__(self, client, namespace, origin=None, publish=True, log_maxlen=None):
        if not namespace or len(namespace.encode()) > 256 or "{" in namespace or "}" in namespace:
            raise ValueError("invalid namespace %r" % namespace)
        self.r, self.ns, self.origin, self.publish = client, namespace, origin, publish
        self.own_log = "" if log_maxlen is None else str(int(log_maxlen))
        tag = "{" + namespace + "}"
        self.prefix, self.index, self.meta, self.log = tag + ":", tag + "#keys", tag + "#meta", tag + "#log"
        self.seq = tag + "#seq"
        self.channel = tag + "#ev"
        self._write, self._len = client.register_script(WRITE), client.register_script(LEN)

    def _run(self, op, key, value, payload):
        keys = [self.prefix + key, self.index, self.meta, self.log, self.seq]
        args = [op, key, value, self.channel + ":" + key, payload, "1" if self.publish else "0", self.own_log]
        return self._write(keys=keys, args=args)

    def _payload(self, op, key, **extra):
        return cbor2.dumps(dict({"v": 1, "op": op, "key": key, "origin": self.origin}, **extra))

    def get(self, key, default=None):
        raw = self.r.get(self.prefix + key)
        return default if raw is None else cbor2.loads(raw)

    def set(self, key, value):
        self._run("set", key, cbor2.dumps(value), self._payload("set", key, value=value))

    def delete(self, key):
        return self._run("del", key, b"", self._payload("del", key)) == 1

    def __len__(self):
        return self._len(keys=[self.index])

    def items(self, batch=500):
        """(key, value) of every live indexed entry; entries gone meanwhile are skipped."""
        seconds, micros = self.r.time()
        now = seconds * 1000 + micros // 1000
        keys, seen = [], set()              # ZSCAN may return a member twice
        for member, score in self.r.zscan_iter(self.index, count=batch):
            if score >= now and member not in seen:
                seen.add(member)
                keys.append(member.decode())
            if len(keys) >= batch:
                yield from self._values(keys)
                keys = []
        yield from self._values(keys)

    def _values(self, keys):
        if keys:
            for key, raw in zip(keys, self.r.mget([self.prefix + k for k in keys])):
                if raw is not None:
                    yield key, cbor2.loads(raw)

    def declared_log(self):
        cap = self.r.hget(self.meta, "log_maxlen")
        return None if cap is None else int(cap)

    def subscribe(self, pattern="*", ready=None):
        """Live events of keys matching `pattern` and namespace-wide ones (clear)."""
        pubsub = self.r.pubsub()
        pubsub.psubscribe("{" + escape_glob(self.ns) + "}#ev:" + pattern)
        pubsub.subscribe(self.channel)
        confirmed = 0
        while confirmed < 2:
            message = pubsub.get_message(timeout=5)
            if message and message["type"] in ("subscribe", "psubscribe"):
                confirmed += 1
        if ready:
            ready()
        for message in pubsub.listen():
            if message["type"] in ("message", "pmessage"):
                yield from parse_message(message["data"])

    def read_log(self, after="0-0", count=100):
        """(gap, [(id, event)...]) after log id `after`; gap: `after` is no longer in the log."""
        pipe = self.r.pipeline(transaction=False)
        pipe.xrange(self.log, "(" + after, "+", count=count)
        pipe.xrange(self.log, after, after)
        entries, still_there = pipe.execute()
        if after != "0-0" and not still_there:
            return True, self.read_log("0-0", count)[1]
        return False, [(i.decode(), parse_event(fields[b"e"])) for i, fields in entries]


def jsonable(value):
    """A decoded CBOR value as JSON, bytes as {"$bytes": hex}, non-text map keys as {"$map": pairs}."""
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    if isinstance(value, cbor2.CBORTag):
        return {"$tag": value.tag, "value": jsonable(value.value)}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: jsonable(v) for k, v in value.items()}
        return {"$map": [[jsonable(k), jsonable(v)] for k, v in value.items()]}
    return value


def meaning(event):
    """An event as the vectors state it (values as CBOR hex)."""
    got = {k: event.get(k) for k in ("op", "key", "origin", "ttl_ms", "seq")}
    got["value"] = cbor2.dumps(event["value"]).hex() if "value" in event else None
    got["prev"] = [cbor2.dumps(x).hex() for x in event["prev"]] if "prev" in event else None
    return got


def check_vectors(directory):
    """Reads every golden vector (wire/vectors) as WIRE.md says; returns the failures."""
    failures = []
    with open(directory + "/events.json") as f:
        for v in json.load(f)["vectors"]:
            try:
                events = parse_message(bytes.fromhex(v["hex"]))
            except ValueError as e:
                if v["mode"] != "reject":
                    failures.append("%s: %s" % (v["name"], e))
                continue
            want = v.get("batch") or [v["event"] or {}]
            got = [meaning(event) for event in events]
            if v["mode"] == "reject" or got != want:
                failures.append("%s: read %r, expected %r" % (v["name"], got, want))
    with open(directory + "/values.json") as f:
        for v in json.load(f)["vectors"]:
            if v["mode"] == "both":          # every value the library writes decodes
                try:
                    cbor2.loads(bytes.fromhex(v["hex"]))
                except Exception as e:
                    failures.append("%s: %s" % (v["name"], e))
    return failures


def main(argv):
    """Command line for tests: URL NS COMMAND ARGS; prints JSON lines."""
    if argv[0] == "check-vectors":           # DIRECTORY
        failures = check_vectors(argv[1])
        print(json.dumps(failures))
        raise SystemExit(1 if failures else 0)
    url, ns, command, args = argv[0], argv[1], argv[2], argv[3:]
    log = None
    if "--log" in args:                      # --log CAP: a writer with a durable log of its own
        at = args.index("--log")
        log, args = int(args[at + 1]), args[:at] + args[at + 2:]
    d = Dict(redis.Redis.from_url(url), ns, origin="python", log_maxlen=log)
    out = lambda obj: print(json.dumps(obj), flush=True)
    if command == "set":                     # KEY JSON
        d.set(args[0], json.loads(args[1]))
    elif command == "set-hex":               # KEY HEX: a value given as its CBOR bytes
        d.set(args[0], cbor2.loads(bytes.fromhex(args[1])))
    elif command == "delete":
        out(d.delete(args[0]))
    elif command == "dump":                  # len, items, declared log, log
        gap, entries = d.read_log(args[0] if args else "0-0", 10_000)
        out({"len": len(d), "items": {k: jsonable(v) for k, v in d.items()},
             "declared_log": d.declared_log(), "gap": gap,
             "log": [[i, jsonable(e)] for i, e in entries]})
    elif command == "subscribe":             # PATTERN COUNT: prints "ready", then COUNT events
        events = d.subscribe(args[0], ready=lambda: out("ready"))
        for _, event in zip(range(int(args[1])), events):
            out(jsonable(event))
    else:
        raise SystemExit("unknown command %r" % command)


if __name__ == "__main__":
    main(sys.argv[1:])
