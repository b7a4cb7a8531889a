-- POST pre-built requests spread over many models and print a JSON summary.
-- Usage: wrk -s wrk_models.lua URL -- REQUESTS_FILE
-- Each line of REQUESTS_FILE is "<path>\t<JSON body>"; the file's order is the traffic
-- distribution (benchmarks/scale.py draws it uniform or Zipf-skewed over the models).
-- Every request string is formatted once in init(), so request() costs one table read.

local requests_pool = {}
local count = 0
local index = 0

function init(args)
  local file = args[1]
  if file == nil then
    error("wrk_models.lua needs the requests file after --")
  end
  local headers = { ["Content-Type"] = "application/json" }
  for line in io.lines(file) do
    local tab = string.find(line, "\t", 1, true)
    if tab ~= nil then
      count = count + 1
      local path = string.sub(line, 1, tab - 1)
      local body = string.sub(line, tab + 1)
      requests_pool[count] = wrk.format("POST", path, headers, body)
    end
  end
  if count == 0 then
    error("no requests in " .. file)
  end
  -- threads start at different offsets so they do not walk the sequence in lockstep
  index = (tonumber(offset) or 0) % count
end

local threads_seen = 0

function setup(thread)
  threads_seen = threads_seen + 1
  thread:set("offset", threads_seen * 7919)
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
