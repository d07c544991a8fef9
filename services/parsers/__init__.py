"""Scanner report parsers, one module per format (nuclei, ZAP, SARIF, Burp, Nikto, xray, Wapiti, generic),
each a generator of ParsedFinding; detect.open_report is the entry point. Shared by the API and the inbox."""
