"""Suanli metering agent (docs/usage-api.md#metering-agent): runs on a GPU host, imports nothing from Django.

``python -m apps.metering.agent --help``. Modules:

- ``nvml``: thin NVML wrapper (``Nvml``, ``CardSample``; a fake ``pynvml`` module can replace it);
- ``collector``: aligned windows, event ids and usage records (pure);
- ``spool``: the durable outbox file, rejected records, reported windows, the lock;
- ``sender``: ``POST /api/v1/usage/`` with urllib, batching, outcome of each answer;
- ``agent``: one cycle (sample → spool → send) and the daemon loop;
- ``cli``: argument parsing and ``main(argv)``.
"""
