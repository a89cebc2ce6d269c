-- wrk script: bench/pages.lua's rotation over a file of paths (one a line, e.g. /api/v1/products?limit=24; a path
-- repeated in the file is asked for that much more often), without its response() and done() hooks: wrk reads
-- each answer's headers and body into Lua only when a response() function exists, and that CPU would be charged to
-- the server measured when it is compared with a run without a script (the bare app's). wrk's own
-- "Non-2xx or 3xx responses" line still counts the statuses of 400 or more.
-- Usage: wrk ... -s bench/paths.lua http://127.0.0.1:PORT -- /path/to/paths.txt

local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
dofile(here .. "pages.lua")
response = nil
done = nil
