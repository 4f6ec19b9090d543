-- Shared by batch.lua and single.lua: environment, the pre-built events and their rotation,
-- counters per thread, and a machine-readable summary (lines starting with "BENCH ") from done().
local M = {}

function M.env(name, default)
  local value = os.getenv(name)
  if value == nil or value == "" then
    if default == nil then error("missing environment variable " .. name) end
    return default
  end
  return value
end

function M.read_lines(path)
  local lines = {}
  for line in io.lines(path) do
    if line ~= "" then lines[#lines + 1] = line end
  end
  if #lines == 0 then error("no lines in " .. path) end
  return lines
end

-- Every event but the end of its identifier, pre-built once: one per customer (BENCH_CUSTOMERS)
-- and meter (BENCH_METERS), with varying values. `format` is the endpoint's encoding of one, a
-- string.format pattern of (meter, customer, value).
function M.event_fragments(format)
  local customers = M.read_lines(M.env("BENCH_CUSTOMERS"))
  local meters = {}
  for name in string.gmatch(M.env("BENCH_METERS"), "[^,]+") do meters[#meters + 1] = name end
  local fragments = {}
  for i, customer in ipairs(customers) do
    for j, meter in ipairs(meters) do
      fragments[#fragments + 1] = string.format(format, meter, customer, (i * 7 + j) % 50 + 1)
    end
  end
  return fragments
end

-- The fragments one after another, round and round. Threads start at different offsets so they
-- don't all hit the same customers at once.
function M.cycle(fragments)
  local next_fragment = ((wrk.thread:get("tid") - 1) * 997) % #fragments + 1
  return function()
    local fragment = fragments[next_fragment]
    next_fragment = next_fragment + 1
    if next_fragment > #fragments then next_fragment = 1 end
    return fragment
  end
end

-- "run-thread-request" for each request in turn: with BENCH_RUN (default `default_run`), unique
-- across runs, threads and requests, so no event is rejected as a duplicate.
function M.request_ids(default_run)
  local run, tid, counter = M.env("BENCH_RUN", default_run), wrk.thread:get("tid"), 0
  return function()
    counter = counter + 1
    return run .. "-" .. tid .. "-" .. counter
  end
end

-- Every request is a POST to `path` with the bearer `token`.
function M.post(path, token, content_type)
  wrk.method = "POST"
  wrk.path = path
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.headers["Content-Type"] = content_type
end

-- This thread's counters (each wrk thread has its own copy of this module), published on the
-- thread for done() to sum.
M.counts = {sent = 0, accepted = 0, rejected = 0, bad_status = 0}

function M.add(name, n)
  M.counts[name] = M.counts[name] + (n or 1)
  wrk.thread:set(name, M.counts[name])
end

-- A response that is not HTTP 200: counted, and the first three shown.
function M.bad_status(label, status, body)
  M.add("bad_status")
  if M.counts.bad_status <= 3 then
    io.stderr:write(label .. ": HTTP " .. status .. ": " .. body:sub(1, 300) .. "\n")
  end
end

-- The thread objects, kept by setup() so done() can sum their counters.
M.threads = {}

function M.setup(thread)
  thread:set("tid", #M.threads + 1)
  M.threads[#M.threads + 1] = thread
end

function M.done(label, summary, latency)
  local sent, accepted, rejected, bad_status = 0, 0, 0, 0
  for _, thread in ipairs(M.threads) do
    sent = sent + (thread:get("sent") or 0)
    accepted = accepted + (thread:get("accepted") or 0)
    rejected = rejected + (thread:get("rejected") or 0)
    bad_status = bad_status + (thread:get("bad_status") or 0)
  end
  local e = summary.errors
  local out = {
    label = label,
    requests = summary.requests,
    duration_us = summary.duration,
    bytes = summary.bytes,
    sent = sent,
    accepted = accepted,
    rejected = rejected,
    bad_status = bad_status,
    err_connect = e.connect, err_read = e.read, err_write = e.write,
    err_status = e.status, err_timeout = e.timeout,
    lat_p50_us = latency:percentile(50),
    lat_p90_us = latency:percentile(90),
    lat_p99_us = latency:percentile(99),
    lat_mean_us = latency.mean,
    lat_max_us = latency.max,
  }
  local keys = {}
  for k in pairs(out) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    io.write(string.format("BENCH %s=%s\n", k, tostring(out[k])))
  end
end

return M
