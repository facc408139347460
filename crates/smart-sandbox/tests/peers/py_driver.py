"""Drives the Python `fhirclient` package (PyPI, 4.4.x) through one SMART
launch against the sandbox, playing the browser itself.

Usage: python3 py_driver.py INSTALL_DIR CONFIG_JSON

CONFIG_JSON: {"iss", "client_id", "secret" (or null), "redirect_uri",
"scope", "launch" (EHR launch handle, or null), "patient"}.

Prints one JSON line: the steps that completed ("launch", "read",
"search", "refresh", "read-after-refresh") and, on failure, the step
that failed and why. Exit status 0 only when every step passed.
"""

import json
import sys
import urllib.parse

sys.path.insert(0, sys.argv[1])
cfg = json.loads(sys.argv[2])

import requests  # noqa: E402  (installed next to fhirclient)
from fhirclient import client  # noqa: E402

done = []
result = {"done": done}


def browse(url, redirect_uri):
    """Follows redirects from `url` until one leads to `redirect_uri`
    (the sandbox approves headlessly) and returns that URL."""
    for _ in range(10):
        if url.startswith(redirect_uri):
            return url
        resp = requests.get(url, allow_redirects=False, timeout=10)
        location = resp.headers.get("location")
        if resp.status_code not in (301, 302, 303, 307) or not location:
            raise Exception(f"GET {url} answered {resp.status_code} without a redirect: {resp.text[:300]}")
        url = urllib.parse.urljoin(url, location)
    raise Exception("too many redirects")


def main():
    settings = {
        "app_id": cfg["client_id"],
        "api_base": cfg["iss"],
        "redirect_uri": cfg["redirect_uri"],
        "scope": cfg["scope"],
    }
    if cfg.get("secret"):
        settings["app_secret"] = cfg["secret"]
    if cfg.get("launch"):
        settings["launch_token"] = cfg["launch"]
    smart = client.FHIRClient(settings=settings)

    step = "launch"
    callback = browse(smart.authorize_url, cfg["redirect_uri"])
    smart.handle_callback(callback)
    if not smart.ready:
        raise Exception("not ready after the callback")
    done.append(step)

    patient = smart.patient_id or cfg["patient"]
    result["patient"] = patient
    step = "read"
    body = smart.server.request_json(f"Patient/{patient}")
    if body.get("id") != patient:
        raise Exception(f"read returned {body.get('resourceType')}/{body.get('id')}")
    done.append(step)

    step = "search"
    bundle = smart.server.request_json(f"Observation?patient={patient}&_count=5")
    if bundle.get("resourceType") != "Bundle" or not bundle.get("entry"):
        raise Exception(f"search returned no entries: {json.dumps(bundle)[:300]}")
    done.append(step)

    step = "refresh"
    auth = smart.server.auth
    if auth.refresh_token is None:
        result["refresh"] = "no refresh token issued"
        return
    before = auth.access_token
    if not smart.reauthorize():
        raise Exception("reauthorize() returned False")
    if auth.access_token in (None, before):
        raise Exception("no new access token after the refresh")
    done.append(step)

    step = "read-after-refresh"
    body = smart.server.request_json(f"Patient/{patient}")
    if body.get("id") != patient:
        raise Exception("read after refresh failed")
    done.append(step)


try:
    main()
except Exception as e:  # report, don't crash: the test prints every cell
    message = f"{type(e).__name__}: {e}"
    response = getattr(e, "response", None)
    if response is not None:  # the server's answer, for the report
        message += f" (HTTP {response.status_code}: {response.text})"
    result["error"] = message[:600]
print(json.dumps(result))
sys.exit(1 if "error" in result else 0)
