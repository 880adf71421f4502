-- One pre-signed request, sent over and over: wrk's fast static path (no request() function).
-- Usage: wrk -s fixed.lua URL -- REQUEST_FILE
-- REQUEST_FILE holds the raw HTTP request (request line, headers, blank line, body); wrk.format
-- adds Content-Length again, so that header is dropped here.

function init(args)
   local f = assert(io.open(args[1], "rb"))
   local raw = f:read("*a")
   f:close()
   local head_end = assert(string.find(raw, "\r\n\r\n", 1, true), "no blank line in request")
   local head = string.sub(raw, 1, head_end - 1)
   wrk.body = string.sub(raw, head_end + 4)
   local first = true
   for line in string.gmatch(head .. "\r\n", "(.-)\r\n") do
      if first then
         wrk.method, wrk.path = string.match(line, "^(%S+) (%S+)")
         first = false
      else
         local name, value = string.match(line, "^([^:]+):%s*(.*)$")
         if string.lower(name) ~= "content-length" then
            wrk.headers[name] = value
         end
      end
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"mean_us":%.1f,"max_us":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.mean, latency.max,
      e.connect, e.read, e.write, e.status, e.timeout))
end
