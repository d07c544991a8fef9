"""Scanner report parsers (nuclei, ZAP, SARIF, generic). Shared by the API and the sync inbox."""
