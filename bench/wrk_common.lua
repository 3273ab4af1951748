-- Shared by the wrk_*.lua scripts (loaded with dofile): thread ids, the JSON report written by
-- done(), and, when BENCH_CAPTURE=1, a copy of the first non-2xx response of each thread.
-- Reading response bodies into Lua costs the load generator time, so capture stays off in the
-- measured runs and bench/mlflow_compare reruns a short capture pass only when errors appeared.

local thread_count = 0

function setup(thread)
   thread:set("id", thread_count)
   thread_count = thread_count + 1
end

if os.getenv("BENCH_CAPTURE") == "1" then
   local captured = false
   function response(status, headers, body)
      if captured or status < 300 then
         return
      end
      captured = true
      local path = os.getenv("BENCH_CAPTURE_DIR") .. "/thread-" .. tostring(id) .. ".txt"
      local file = io.open(path, "w")
      file:write("status: ", tostring(status), "\n")
      for name, value in pairs(headers) do
         file:write(name, ": ", value, "\n")
      end
      file:write("\n", string.sub(body or "", 1, 8000), "\n")
      file:close()
   end
end

function done(summary, latency, requests)
   local seconds = summary.duration / 1e6
   local errors = summary.errors
   local out = io.open(os.getenv("BENCH_WRK_OUT"), "w")
   out:write(string.format(
      '{"requests": %d, "duration_s": %.6f, "bytes": %d, "rps": %.3f, ' ..
      '"latency_mean_ms": %.3f, "latency_max_ms": %.3f, ' ..
      '"p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
      summary.requests, seconds, summary.bytes, summary.requests / seconds,
      latency.mean / 1000, latency.max / 1000,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
      errors.connect, errors.read, errors.write, errors.status, errors.timeout))
   out:close()
end
