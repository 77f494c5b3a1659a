"""The end-to-end demo (``compsec demo``): every capability of compsec, on the embedded tiny assistant."""
