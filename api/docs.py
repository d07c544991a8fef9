"""API_PREFIX/docs: a browsable page over /openapi.json that needs nothing from a CDN."""

from flask import Blueprint, Response

from services.config import API_PREFIX

bp = Blueprint("docs_page", __name__)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cloudeye API v1</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="docs.css"></head><body>
<h1>cloudeye API v1</h1>
<p>Base path <code>API_PREFIX</code>. Authenticate with <code>Authorization: Bearer &lt;token&gt;</code>
(from <code>POST /users/login</code> or an API token). Machine-readable document:
<a href="openapi.json">openapi.json</a>.</p>
<div id="ops">Loading…</div>
<script src="docs.js"></script></body></html>
"""
STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:980px;padding:1rem 1.5rem;color:#222}
h1{font-size:1.5rem} h2{margin-top:2rem;border-bottom:1px solid #ddd;text-transform:capitalize}
details{border:1px solid #e3e3e3;border-radius:6px;margin:.4rem 0;padding:.3rem .6rem}
summary{cursor:pointer} code,pre{font-family:ui-monospace,monospace;font-size:13px}
pre{background:#f6f8fa;padding:.6rem;overflow:auto;border-radius:4px}
.m{display:inline-block;min-width:4.2rem;font-weight:600}
.get{color:#1a7f37}.post{color:#0969da}.patch{color:#9a6700}.put{color:#8250df}.delete{color:#cf222e}
"""

SCRIPT = """
fetch("openapi.json").then(r => r.json()).then(spec => {
  const groups = {};
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (!["get","post","put","patch","delete"].includes(method)) continue;
      const tag = (op.tags && op.tags[0]) || "other";
      (groups[tag] = groups[tag] || []).push([method, path, op]);
    }
  }
  const root = document.getElementById("ops"); root.textContent = "";
  for (const [tag, ops] of Object.entries(groups)) {
    const h = document.createElement("h2"); h.textContent = tag; root.appendChild(h);
    for (const [method, path, op] of ops) {
      const d = document.createElement("details");
      const s = document.createElement("summary");
      s.innerHTML = `<span class="m ${method}">${method.toUpperCase()}</span> <code></code> `;
      s.querySelector("code").textContent = path;
      s.appendChild(document.createTextNode(op.summary || ""));
      d.appendChild(s);
      const pre = document.createElement("pre");
      pre.textContent = JSON.stringify({parameters: op.parameters, requestBody: op.requestBody,
                                        responses: op.responses}, null, 2);
      d.appendChild(pre); root.appendChild(d);
    }
  }
}).catch(e => { document.getElementById("ops").textContent = "Could not load openapi.json: " + e; });
"""


# The page's own script, style and the document it fetches, all from this origin: no inline code.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


@bp.get("/docs")
def docs():
    response = Response(PAGE.replace("API_PREFIX", API_PREFIX, 1), mimetype="text/html")
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return response


@bp.get("/docs.js")
def docs_script():
    return Response(SCRIPT, mimetype="text/javascript")


@bp.get("/docs.css")
def docs_style():
    return Response(STYLE, mimetype="text/css")
