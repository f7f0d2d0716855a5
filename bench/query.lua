-- wrk: GET one fixed query (QUERY, e.g. "/Observation?code=8867-4") with an optional token.
local token = os.getenv("TOKEN") or ""
local prefix = os.getenv("PREFIX") or ""
local query = os.getenv("QUERY")
local headers = {}
if token ~= "" then headers["Authorization"] = "Bearer " .. token end
request = function()
  return wrk.format("GET", prefix .. query, headers)
end
