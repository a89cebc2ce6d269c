-- wrk script: GET the paths in the file named by the first script argument (one a line, e.g. /p/linen-tee),
-- rotating through them, and count the answers by status, so a run can show that every one was a 200
-- (wrk's own "Non-2xx or 3xx responses" line counts only statuses of 400 or more).
-- Usage: wrk ... -s bench/pages.lua http://127.0.0.1:PORT -- /path/to/paths.txt
-- At the end it prints one line: `statuses: 200=N 302=M ...` (read by bench/storefront.py).
-- The latency wrk records ends when an answer has been read, before response() runs.

local threads = {}
local requests = {}
local counter = 0
statuses = {}  -- global: done() reads each thread's counts with thread:get

function setup(thread)
  thread:set("thread_number", #threads)
  threads[#threads + 1] = thread
end

function init(args)
  local path = args[1]
  local file = assert(io.open(path or "", "r"), "cannot open the path file " .. tostring(path))
  for line in file:lines() do
    if line ~= "" then
      requests[#requests + 1] = wrk.format("GET", line)
    end
  end
  file:close()
  assert(#requests > 0, "no paths in " .. path)
  -- each thread starts at its own place in the list, so two threads do not ask for the same page together
  counter = ((thread_number or 0) * 101) % #requests
end

function request()
  counter = counter % #requests + 1
  return requests[counter]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses") or {}) do
      total[status] = (total[status] or 0) + count
    end
  end
  local keys = {}
  for status in pairs(total) do keys[#keys + 1] = status end
  table.sort(keys)
  local parts = {}
  for _, status in ipairs(keys) do parts[#parts + 1] = string.format("%d=%d", status, total[status]) end
  io.write("statuses: " .. table.concat(parts, " ") .. "\n")
end
