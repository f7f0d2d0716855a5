-- wrk: GET a random resource by id. IDS_FILE holds one "Type/id" per line; TOKEN, if set,
-- is sent as a bearer token; PREFIX is the FHIR base path ("/fhir" for Hale).
local ids = {}
for line in io.lines(os.getenv("IDS_FILE")) do ids[#ids + 1] = line end
local token = os.getenv("TOKEN") or ""
local prefix = os.getenv("PREFIX") or ""
local headers = {}
if token ~= "" then headers["Authorization"] = "Bearer " .. token end
math.randomseed(os.time())
request = function()
  return wrk.format("GET", prefix .. "/" .. ids[math.random(#ids)], headers)
end
