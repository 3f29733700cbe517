"""The EdgeX domain kernel: what every service needs to know about EdgeX itself, written once.

- `values`: value types, parsing (Go's rules) and formatting of reading text, integer ranges, the true/false parser;
- `transforms`: resource transforms (mask, shift, base, scale, offset) and mappings;
- `profiles`: a device command or resource resolved against its profile, and the checks a read or write passes;
- `states`: what a device's admin and operating state allow;
- `events`: decoding and validation of events from the stream (core-data, rules engine, app services).

Pure functions and plain data: no I/O, no framework imports.
"""
