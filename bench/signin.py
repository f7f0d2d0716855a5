#!/usr/bin/env python3
"""Signs in to a Hale server as a browser does (form, CSRF token, recovery code) and prints
the session cookie, for benchmarks of signed-in pages.

    bench/signin.py http://127.0.0.1:18093 EMAIL PASSWORD RECOVERY_CODE
"""
import http.cookiejar
import re
import sys
import urllib.parse
import urllib.request

base, email, password, code = sys.argv[1:5]
jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))


def submit(path, fields):
    page = opener.open(base + path).read().decode()
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode({"csrf": csrf, **fields}).encode()
    return opener.open(base + path, data).geturl()


submit("/sign-in", {"email": email, "password": password})
landed = submit("/sign-in/recovery-code", {"code": code})
assert landed.endswith("/record"), landed
print(next(f"hale_session={c.value}" for c in jar if c.name == "hale_session"))
