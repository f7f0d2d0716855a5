-- wrk: GET one page (PAGE, e.g. "/record") as a signed-in browser (COOKIE, "hale_session=…").
local page = os.getenv("PAGE")
local headers = { ["Cookie"] = os.getenv("COOKIE") or "" }
request = function()
  return wrk.format("GET", page, headers)
end
