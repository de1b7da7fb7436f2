"""X12 5010 files: 837P claims out; 835, 999 and 277CA in."""
