"""Benchmark: parse rate and peak memory of the XML and xray parsers on 100 MB reports, against bare
parsers of the same files and the nuclei JSON-lines parser on as many findings, in one run.

    .venv/bin/python bench/bench_parsers.py [--mb 100] [--keep DIR]

Generates, in a temporary directory (or DIR with --keep), reports shaped like the scanners':
  zap.xml      a ZAP traditional XML report: alerts of 1..8 instances, HTML descriptions
  xray.json    an xray --json-output array: one vulnerability per object, with its request/response
  nuclei.jsonl nuclei -jsonl results, as many as each of the above has findings (one file per count)
and measures each step in a fresh process (so each peak RSS is its own; the fastest of --repeat runs
counts), nothing written anywhere:
  cloudeye zap        services.parsers open_report(format="zap"): hardened reader, streamed, findings built
  bare iterparse      xml.etree.ElementTree.iterparse (C, no hardening) over the same file, elements cleared
  cloudeye xray       open_report(format="xray"): the array read item by item, findings built
  bare json.load      json.load of the same file, whole (the fastest, and all of it in memory)
  nuclei JSON lines   open_report(format="nuclei") on the same number of findings
Figures: MB/s, findings/s, peak RSS of the process and its growth over the interpreter with the
parsers imported. The ratios compare each cloudeye parser with the baselines of the same run.
"""

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ZAP_ALERTS = [
    (10038, "Content Security Policy (CSP) Header Not Set", 2, 693),
    (10020, "Missing Anti-clickjacking Header", 2, 1021),
    (10021, "X-Content-Type-Options Header Missing", 1, 693),
    (10035, "Strict-Transport-Security Header Not Set", 1, 319),
    (40012, "Cross Site Scripting (Reflected)", 3, 79),
    (40018, "SQL Injection", 3, 89),
    (10096, "Timestamp Disclosure - Unix", 0, 200),
]
XRAY_PLUGINS = [
    "xss/reflected/default",
    "sqldet/blind-based/default",
    "dirscan/backup/default",
    "cmd-injection/default/default",
    "path-traversal/default/default",
    "jsonp/jsonp/default",
]


def write_zap(path: Path, size: int) -> int:
    """A ZAP XML report of about `size` bytes; returns the number of findings (instances)."""
    rng = random.Random(1)
    findings = 0
    with path.open("w", encoding="utf-8") as out:
        out.write(
            '<?xml version="1.0"?>\n<OWASPZAPReport programName="ZAP" version="2.16.0" generated="bench">\n'
        )
        out.write(
            '\t<site name="https://bench.example.test" host="bench.example.test" port="443" ssl="true">\n\t\t<alerts>\n'
        )
        number = 0
        while out.tell() < size:
            plugin, name, risk, cwe = ZAP_ALERTS[number % len(ZAP_ALERTS)]
            instances = "".join(
                f"\t\t\t\t\t\t<instance>\n\t\t\t\t\t\t\t<uri>https://bench.example.test/app/{number}/page/{i}?id={i}</uri>\n"
                f"\t\t\t\t\t\t\t<nodeName>https://bench.example.test/app/{number}/page/{i} (id)</nodeName>\n"
                f"\t\t\t\t\t\t\t<method>GET</method>\n\t\t\t\t\t\t\t<param>id</param>\n\t\t\t\t\t\t\t<attack></attack>\n"
                f"\t\t\t\t\t\t\t<evidence>&lt;input name=&quot;id&quot; value=&quot;{i}&quot;&gt;</evidence>\n"
                f"\t\t\t\t\t\t\t<otherinfo></otherinfo>\n\t\t\t\t\t\t</instance>\n"
                for i in range(rng.randint(1, 8))
            )
            findings += instances.count("<instance>")
            out.write(
                f"\t\t\t<alertitem>\n\t\t\t\t<pluginid>{plugin}</pluginid>\n\t\t\t\t<alertRef>{plugin}</alertRef>\n"
                f"\t\t\t\t<alert>{name}</alert>\n\t\t\t\t<name>{name}</name>\n\t\t\t\t<riskcode>{risk}</riskcode>\n"
                f"\t\t\t\t<confidence>2</confidence>\n\t\t\t\t<riskdesc>bench</riskdesc>\n\t\t\t\t<confidencedesc>Medium</confidencedesc>\n"
                f"\t\t\t\t<desc>&lt;p&gt;{name}: a description of the weakness as ZAP writes it, in a paragraph or two "
                f"of HTML, long enough to be realistic.&lt;/p&gt;</desc>\n\t\t\t\t<instances>\n{instances}\t\t\t\t</instances>\n"
                f"\t\t\t\t<count>{instances.count('<instance>')}</count>\n"
                f"\t\t\t\t<solution>&lt;p&gt;What to change so that it goes away.&lt;/p&gt;</solution>\n"
                f"\t\t\t\t<otherinfo></otherinfo>\n\t\t\t\t<reference>&lt;p&gt;https://example.org/ref/{plugin}&lt;/p&gt;</reference>\n"
                f"\t\t\t\t<cweid>{cwe}</cweid>\n\t\t\t\t<wascid>15</wascid>\n\t\t\t\t<sourceid>1</sourceid>\n\t\t\t</alertitem>\n"
            )
            number += 1
        out.write("\t\t</alerts>\n\t</site>\n</OWASPZAPReport>\n")
    return findings


def write_xray(path: Path, size: int) -> int:
    """An xray --json-output array of about `size` bytes; returns the number of vulnerabilities."""
    count = 0
    with path.open("w", encoding="utf-8") as out:
        out.write("[\n")
        while out.tell() < size:
            plugin = XRAY_PLUGINS[count % len(XRAY_PLUGINS)]
            url = f"https://bench.example.test/app/{count}/item?id={count}"
            vuln = {
                "create_time": 1763632800000 + count,
                "detail": {
                    "addr": url,
                    "payload": f"{count} and 3870=3870",
                    "snapshot": [
                        [
                            f"GET /app/{count}/item?id={count}+and+3870%3D3870 HTTP/1.1\r\nHost: bench.example.test\r\n"
                            "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36\r\nAccept: */*\r\n\r\n",
                            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
                            + "<p>item page</p>" * 60,
                        ]
                    ],
                    "extra": {"param": {"key": "id", "position": "query", "value": str(count)}},
                },
                "plugin": plugin,
                "target": {"url": url.split("?")[0], "params": [{"position": "query", "path": ["id"]}]},
            }
            out.write(("," if count else "") + json.dumps(vuln, separators=(",", ":")) + "\n")
            count += 1
        out.write("]\n")
    return count


def write_nuclei(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        for number in range(count):
            out.write(
                json.dumps(
                    {
                        "template-id": "http-missing-security-headers",
                        "info": {
                            "name": "HTTP Missing Security Headers",
                            "author": ["bench"],
                            "severity": "info",
                            "reference": ["https://example.org/ref"],
                            "classification": {"cwe-id": ["cwe-693"]},
                        },
                        "matcher-name": "content-security-policy",
                        "type": "http",
                        "host": "https://bench.example.test",
                        "matched-at": f"https://bench.example.test/app/{number}/page",
                        "timestamp": "2026-11-20T10:00:00Z",
                    }
                )
                + "\n"
            )


# -- one measurement, in a child process ---------------------------------------------------------------


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(step: str, path: str) -> dict:
    import io
    import xml.etree.ElementTree as ET

    from services.parsers.detect import open_report

    base = rss_mb()
    started = time.perf_counter()
    count = 0
    if step == "bare-iterparse":
        with open(path, "rb") as stream:
            for _, element in ET.iterparse(stream, events=("end",)):
                if element.tag == "instance":
                    count += 1
                if element.tag == "alertitem":
                    element.clear()
    elif step == "bare-json":
        with open(path, "rb") as stream:
            count = len(json.load(stream))
    else:
        with open(path, "rb", buffering=0) as raw:
            _, findings = open_report(io.BufferedReader(raw, 1 << 20), step)
            for _ in findings:
                count += 1
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "count": count,
        "peak_mb": rss_mb(),
        "base_mb": base,
        "bytes": os.path.getsize(path),
    }


def run_step(step: str, path: Path, repeat: int) -> dict:
    """The fastest of `repeat` runs (the machine is shared: the others measure its neighbours)."""
    runs = []
    for _ in range(repeat):
        done = subprocess.run(
            [sys.executable, __file__, "--measure", step, str(path)],
            check=True,
            capture_output=True,
            text=True,
        )
        runs.append(json.loads(done.stdout))
    return min(runs, key=lambda run: run["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=int, default=100, help="size of each generated report (default 100)")
    parser.add_argument("--keep", help="generate the reports into this directory and keep them")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each step; the fastest counts (default 3)"
    )
    parser.add_argument("--measure", nargs=2, metavar=("STEP", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return

    with tempfile.TemporaryDirectory(prefix="cloudeye-bench-parsers-") as scratch:
        folder = Path(args.keep or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        size = args.mb << 20
        print(f"generating {args.mb} MB reports in {folder} ...", flush=True)
        zap_findings = write_zap(folder / "zap.xml", size)
        xray_findings = write_xray(folder / "xray.json", size)
        write_nuclei(folder / "nuclei-zap.jsonl", zap_findings)
        write_nuclei(folder / "nuclei-xray.jsonl", xray_findings)

        steps = [
            ("ZAP XML", "cloudeye zap", "zap", folder / "zap.xml"),
            ("ZAP XML", "bare iterparse", "bare-iterparse", folder / "zap.xml"),
            ("ZAP XML", "nuclei JSON lines", "nuclei", folder / "nuclei-zap.jsonl"),
            ("xray JSON", "cloudeye xray", "xray", folder / "xray.json"),
            ("xray JSON", "bare json.load", "bare-json", folder / "xray.json"),
            ("xray JSON", "nuclei JSON lines", "nuclei", folder / "nuclei-xray.jsonl"),
        ]
        results = {}
        print(f"\nPython {platform.python_version()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}\n")
        print(
            f"{'report':<10} {'step':<18} {'MB':>6} {'findings':>9} {'time s':>7} {'MB/s':>6} {'findings/s':>10} "
            f"{'peak RSS MB':>11} {'growth MB':>9}"
        )
        for report, label, step, path in steps:
            result = run_step(step, path, args.repeat)
            results[(report, label)] = result
            mb = result["bytes"] / (1 << 20)
            print(
                f"{report:<10} {label:<18} {mb:>6.0f} {result['count']:>9} {result['seconds']:>7.2f} "
                f"{mb / result['seconds']:>6.1f} {result['count'] / result['seconds']:>10.0f} "
                f"{result['peak_mb']:>11.0f} {result['peak_mb'] - result['base_mb']:>9.0f}",
                flush=True,
            )

        def ratio(report, label, baseline):
            return results[(report, label)]["seconds"] / results[(report, baseline)]["seconds"]

        print("\nratios of time (lower is better for cloudeye)")
        print(
            f"  cloudeye zap / bare iterparse          {ratio('ZAP XML', 'cloudeye zap', 'bare iterparse'):.2f}"
        )
        print(
            f"  cloudeye zap / nuclei, same findings    {ratio('ZAP XML', 'cloudeye zap', 'nuclei JSON lines'):.2f}"
        )
        print(
            f"  cloudeye xray / bare json.load         {ratio('xray JSON', 'cloudeye xray', 'bare json.load'):.2f}"
        )
        print(
            f"  cloudeye xray / nuclei, same findings   {ratio('xray JSON', 'cloudeye xray', 'nuclei JSON lines'):.2f}"
        )


if __name__ == "__main__":
    main()
