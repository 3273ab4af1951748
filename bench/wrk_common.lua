-- Shared by the wrk_*.lua scripts (loaded with dofile): thread ids, a record of non-2xx answers,
-- and the JSON report done() writes to BENCH_WRK_OUT.
--
-- response() keeps, per thread, a count per non-2xx status and the first such answer (status,
-- headers, body), which the report carries, so a failing request is documented by the very pass
-- that failed. Defining response() makes wrk hand every body to Lua; at the request rates these
-- scenarios reach (tens to hundreds a second) that copy costs the load generator little.

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   threads[#threads + 1] = thread
end

errors_by_status = {}
first_error = nil

function response(status, headers, body)
   if status >= 200 and status < 300 then
      return
   end
   local key = tostring(status)
   errors_by_status[key] = (errors_by_status[key] or 0) + 1
   if first_error == nil then
      local lines = { "HTTP " .. key }
      for name, value in pairs(headers) do
         lines[#lines + 1] = name .. ": " .. value
      end
      lines[#lines + 1] = ""
      lines[#lines + 1] = string.sub(body or "", 1, 4000)
      first_error = table.concat(lines, "\n")
   end
end

local function json_string(text)
   return '"' .. text:gsub('[%c"\\]', function(c)
      return string.format("\\u%04x", c:byte())
   end) .. '"'
end

function done(summary, latency, requests)
   local seconds = summary.duration / 1e6
   local errors = summary.errors
   local statuses, first_errors = {}, {}
   for _, thread in ipairs(threads) do
      local counts = thread:get("errors_by_status")
      if counts then
         for status, count in pairs(counts) do
            statuses[status] = (statuses[status] or 0) + count
         end
      end
      local first = thread:get("first_error")
      if first then
         first_errors[#first_errors + 1] = json_string(first)
      end
   end
   local status_parts = {}
   for status, count in pairs(statuses) do
      status_parts[#status_parts + 1] = json_string(status) .. ": " .. count
   end
   local out = io.open(os.getenv("BENCH_WRK_OUT"), "w")
   out:write(string.format(
      '{"requests": %d, "duration_s": %.6f, "bytes": %d, "rps": %.3f, ' ..
      '"latency_mean_ms": %.3f, "latency_max_ms": %.3f, ' ..
      '"p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"non_2xx_by_status": {%s}, "first_non_2xx": [%s]}\n',
      summary.requests, seconds, summary.bytes, summary.requests / seconds,
      latency.mean / 1000, latency.max / 1000,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
      errors.connect, errors.read, errors.write, errors.status, errors.timeout,
      table.concat(status_parts, ", "), table.concat(first_errors, ", ")))
   out:close()
end
