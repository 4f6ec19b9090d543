-- Shared by batch.lua and single.lua: load the customer pool, count per thread, and print a
-- machine-readable summary (lines starting with "BENCH ") from done().
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
