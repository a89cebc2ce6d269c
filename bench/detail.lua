-- wrk script: GET /api/v1/products/{slug}, rotating through the slugs in the file named by the first
-- script argument (one a line), so the detail benchmark reads many rows rather than one hot one.
-- Usage: wrk ... -s bench/detail.lua http://127.0.0.1:PORT -- /path/to/slugs.txt

local threads = 0
local requests = {}
local counter = 0

function setup(thread)
  thread:set("thread_number", threads)
  threads = threads + 1
end

function init(args)
  local path = args[1]
  local file = assert(io.open(path or "", "r"), "cannot open the slug file " .. tostring(path))
  for line in file:lines() do
    if line ~= "" then
      requests[#requests + 1] = wrk.format("GET", "/api/v1/products/" .. line)
    end
  end
  file:close()
  assert(#requests > 0, "no slugs in " .. path)
  -- each thread starts at its own place in the list, so the two do not ask for the same row together
  counter = ((thread_number or 0) * 101) % #requests
end

function request()
  counter = counter % #requests + 1
  return requests[counter]
end
