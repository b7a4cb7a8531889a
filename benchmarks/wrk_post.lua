-- POST a rotating set of pre-built request bodies and print a JSON summary.
-- Usage: wrk -s wrk_post.lua URL -- BODIES_FILE   (one JSON body per line)
-- Every request string is formatted once in init(), so request() costs one table read.

local requests_pool = {}
local count = 0
local index = 0

function init(args)
  local path = args[1]
  if path == nil then
    error("wrk_post.lua needs the bodies file after --")
  end
  local headers = { ["Content-Type"] = "application/json" }
  for line in io.lines(path) do
    if #line > 0 then
      count = count + 1
      requests_pool[count] = wrk.format("POST", wrk.path, headers, line)
    end
  end
  if count == 0 then
    error("no request bodies in " .. path)
  end
  -- threads start at different offsets so they do not send the same row in lockstep
  index = (tonumber(offset) or 0) % count
end

-- setup() runs in wrk's main Lua state before each thread's init(); it sets the
-- thread-local global `offset`.
local threads_seen = 0

function setup(thread)
  threads_seen = threads_seen + 1
  thread:set("offset", threads_seen * 7)
end

function request()
  index = index % count + 1
  return requests_pool[index]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d},' ..
    '"latency_us":{"min":%d,"max":%d,"mean":%.3f,"stdev":%.3f,' ..
    '"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.timeout, e.status,
    latency.min, latency.max, latency.mean, latency.stdev,
    latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
