-- Many pre-signed requests, each sent exactly once (writes with their own ClientRequestToken).
-- Usage: wrk -t T -s replay.lua URL -- REQUESTS_FILE T DONE_FILE
-- REQUESTS_FILE holds complete raw HTTP requests separated by NUL bytes; thread k sends the
-- requests whose index is k modulo T. A thread that has sent all of its requests sends nothing
-- more, stops once every one has been answered, and appends a line to DONE_FILE: wrk's main
-- thread sleeps for the whole -d duration regardless, so the caller interrupts it (SIGINT) once
-- every thread is done. Throughput is computed over the active time measured here (first request
-- to last answer, CLOCK_MONOTONIC through LuaJIT's FFI), not over wrk's duration.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("bench_timespec")
local function now_us()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
   return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end

local threads = {}
local next_tid = 0

function setup(thread)
   thread:set("tid", next_tid)
   next_tid = next_tid + 1
   table.insert(threads, thread)
end

local reqs = {}
local n, idx = 0, 0
local peeked = false
local done_file = nil
ok, bad, sent, first_error, t_first, t_last = 0, 0, 0, "", 0, 0

function init(args)
   local nthreads = tonumber(args[2])
   done_file = args[3]
   local f = assert(io.open(args[1], "rb"))
   local data = f:read("*a")
   f:close()
   local pos, i = 1, 0
   while pos <= #data do
      local stop = string.find(data, "\0", pos, true) or (#data + 1)
      if i % nthreads == tid then
         n = n + 1
         reqs[n] = string.sub(data, pos, stop - 1)
      end
      i = i + 1
      pos = stop + 1
   end
end

function request()
   -- wrk calls request() once on the first thread, before it runs, to count pipelined
   -- requests; that call must not use up a request.
   if tid == 0 and not peeked then
      peeked = true
      return reqs[1]
   end
   if idx < n then
      if idx == 0 then t_first = now_us() end
      idx = idx + 1
      sent = sent + 1
      return reqs[idx]
   end
   return ""  -- nothing left: the connection stays idle
end

function response(status, headers, body)
   t_last = now_us()
   if status == 200 then
      ok = ok + 1
   else
      bad = bad + 1
      if first_error == "" then
         first_error = status .. " " .. string.sub(body or "", 1, 300)
      end
   end
   if ok + bad == n then
      local f = io.open(done_file, "a")
      if f then
         f:write(tid .. "\n")
         f:close()
      end
      wrk.thread:stop()
   end
end

local function json_string(s)
   return '"' .. string.gsub(s, '[%c"\\]', function(c)
      return string.format("\\u%04x", string.byte(c))
   end) .. '"'
end

function done(summary, latency, requests)
   local t_ok, t_bad, t_sent, t_err, first, last = 0, 0, 0, "", nil, 0
   for _, t in ipairs(threads) do
      t_ok = t_ok + t:get("ok")
      t_bad = t_bad + t:get("bad")
      t_sent = t_sent + t:get("sent")
      if t_err == "" then t_err = t:get("first_error") end
      local tf, tl = t:get("t_first"), t:get("t_last")
      if tf > 0 and (first == nil or tf < first) then first = tf end
      if tl > last then last = tl end
   end
   local active = (first ~= nil and last > first) and (last - first) or 0
   local e = summary.errors
   -- The whole latency histogram (microseconds, requests), as reported: wrk has already applied
   -- its coordinated-omission correction, which bench/wrk.py undoes for the recorded p99.
   local hist = {}
   for i = 1, #latency do
      local value, count = latency(i)
      hist[#hist + 1] = string.format("[%d,%d]", value, count)
   end
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"active_us":%d,"bytes":%d,' ..
      '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"mean_us":%.1f,"max_us":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"ok":%d,"bad":%d,"sent":%d,"first_error":%s,"hist":[%s]}\n',
      summary.requests, summary.duration, active, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.mean, latency.max,
      e.connect, e.read, e.write, e.status, e.timeout,
      t_ok, t_bad, t_sent, json_string(t_err), table.concat(hist, ",")))
end
