-- POST a rotating set of pre-built bodies that may hold binary bytes; print a JSON summary.
-- Usage: wrk -s wrk_binary.lua URL -- BODIES_FILE
-- The file is a sequence of entries "<header length> <body length>\n" + body bytes: a
-- header length above 0 sends the body as the OIP binary tensor extension
-- (Content-Type: application/octet-stream, Inference-Header-Content-Length), 0 as plain
-- JSON. Every request string is formatted once in init(), so request() is one table read.

local requests_pool = {}
local count = 0
local index = 0

function init(args)
  local path = args[1]
  if path == nil then
    error("wrk_binary.lua needs the bodies file after --")
  end
  local file = assert(io.open(path, "rb"))
  while true do
    local line = file:read("*l")
    if line == nil or #line == 0 then
      break
    end
    local header_length, body_length = line:match("^(%d+) (%d+)$")
    if header_length == nil then
      error("bad entry line in " .. path .. ": " .. line)
    end
    local body = file:read(tonumber(body_length))
    if body == nil or #body ~= tonumber(body_length) then
      error("truncated body in " .. path)
    end
    local headers
    if tonumber(header_length) > 0 then
      headers = {
        ["Content-Type"] = "application/octet-stream",
        ["Inference-Header-Content-Length"] = header_length,
      }
    else
      headers = { ["Content-Type"] = "application/json" }
    end
    count = count + 1
    requests_pool[count] = wrk.format("POST", wrk.path, headers, body)
  end
  file:close()
  if count == 0 then
    error("no request bodies in " .. path)
  end
  index = (tonumber(offset) or 0) % count
end

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
