// Drives the JS `fhirclient` package (npm, 2.6.x) through one SMART launch
// against the sandbox, with its Node adapter behind a plain node http server
// (the app), while this script also plays the browser.
//
// Usage: node js_driver.cjs INSTALL_DIR CONFIG_JSON
//
// CONFIG_JSON: {"iss", "client_id", "secret" (or null), "redirect_uri"
// (http://127.0.0.1:PORT/callback: the app listens on PORT), "scope",
// "launch" (EHR launch handle, or null), "patient"}.
//
// Prints one JSON line: the steps that completed ("launch", "read",
// "search", "refresh", "read-after-refresh") and, on failure, the step that
// failed and why. Exit status 0 only when every step passed.
"use strict";

const http = require("http");
const path = require("path");

const smart = require(path.join(process.argv[2], "node_modules", "fhirclient", "lib", "entry", "node"));
const cfg = JSON.parse(process.argv[3]);

const done = [];
const result = { done };

// The library keeps its state in a server-side store; one map is enough for
// one launch.
const memory = new Map();
const storage = {
  async get(key) { return memory.get(key); },
  async set(key, value) { memory.set(key, value); return value; },
  async unset(key) { return memory.delete(key); },
};

let finish;
const finished = new Promise((resolve) => { finish = resolve; });

async function afterCallback(client) {
  done.push("launch");
  const patient = client.patient.id || cfg.patient;
  result.patient = patient;
  const read = await client.request(`Patient/${patient}`);
  if (read.id !== patient) throw new Error(`read returned ${read.resourceType}/${read.id}`);
  done.push("read");
  const bundle = await client.request(`Observation?patient=${patient}&_count=5`);
  if (bundle.resourceType !== "Bundle" || !(bundle.entry || []).length) {
    throw new Error(`search returned no entries: ${JSON.stringify(bundle).slice(0, 300)}`);
  }
  done.push("search");
  if (!client.state.tokenResponse.refresh_token) {
    result.refresh = "no refresh token issued";
    return;
  }
  const before = client.state.tokenResponse.access_token;
  await client.refresh();
  if (!client.state.tokenResponse.access_token || client.state.tokenResponse.access_token === before) {
    throw new Error("no new access token after the refresh");
  }
  done.push("refresh");
  const again = await client.request(`Patient/${patient}`);
  if (again.id !== patient) throw new Error("read after refresh failed");
  done.push("read-after-refresh");
}

const app = http.createServer((req, res) => {
  const url = new URL(req.url, `http://${req.headers.host}`);
  if (url.pathname === "/launch") {
    const options = { clientId: cfg.client_id, scope: cfg.scope, redirectUri: cfg.redirect_uri };
    if (cfg.secret) options.clientSecret = cfg.secret;
    // iss and launch come in the launch URL's query (EHR launch) or here.
    if (!url.searchParams.get("iss")) options.iss = cfg.iss;
    smart(req, res, storage).authorize(options).catch((e) => {
      res.writeHead(500); res.end(String(e));
      finish(e);
    });
    return;
  }
  if (url.pathname === new URL(cfg.redirect_uri).pathname) {
    smart(req, res, storage).ready()
      .then(afterCallback)
      .then(() => { res.end("ok"); finish(null); },
            (e) => { res.writeHead(500); res.end(String(e)); finish(e); });
    return;
  }
  res.writeHead(404); res.end();
});

// The browser: from the app's launch URL through the sandbox's authorize
// endpoint (it approves headlessly) back to the app's redirect URI.
async function browse(start) {
  let url = start;
  for (let i = 0; i < 10; i++) {
    const resp = await fetch(url, { redirect: "manual" });
    const location = resp.headers.get("location");
    if (![301, 302, 303, 307].includes(resp.status) || !location) {
      return resp;
    }
    url = new URL(location, url).href;
  }
  throw new Error("too many redirects");
}

async function main() {
  const port = Number(new URL(cfg.redirect_uri).port);
  await new Promise((resolve, reject) => app.listen(port, "127.0.0.1", resolve).on("error", reject));
  const launch = new URL(`http://127.0.0.1:${port}/launch`);
  if (cfg.launch) {
    launch.searchParams.set("iss", cfg.iss);
    launch.searchParams.set("launch", cfg.launch);
  }
  const last = await browse(launch.href);
  const error = await Promise.race([
    finished,
    new Promise((resolve) => setTimeout(() => resolve(new Error(`no callback; last answer ${last.status}`)), 20000)),
  ]);
  if (error) throw error;
}

main()
  .catch((e) => { result.error = String(e && e.stack ? e.message : e).slice(0, 600); })
  .finally(() => {
    process.stdout.write(JSON.stringify(result) + "\n");
    process.exit(result.error ? 1 : 0);
  });
