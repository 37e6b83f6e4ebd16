"""Fakes shared by the tests: NVML, a clock, the usage API over HTTP. None imports Django."""
