"""A thin wrapper over NVML (nvidia-ml-py, module ``pynvml``).

The agent needs four things from NVML per card: its UUID, whether compute processes run on it,
and telemetry (utilisation, memory used, total energy). :class:`Nvml` reads them and turns the
per-card NVML errors into "unknown" (``None``) instead of exceptions, so one lost or limited card
never stops the others from being reported.

Tests replace the ``pynvml`` module with a fake that has the same few functions
(``Nvml(module=fake)``), or replace :class:`Nvml` itself with any object that has ``open()``,
``close()`` and ``read_cards(query_processes=...)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

logger = logging.getLogger(__name__)

# NVML return codes (nvml.h); repeated here so a fake module needs only the functions.
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13


class NvmlUnavailable(RuntimeError):
    """NVML cannot be used on this host (no driver, no library, nvidia-ml-py not installed)."""


@dataclass(frozen=True, slots=True)
class CardSample:
    """One card read at one instant. ``None`` means NVML could not tell (unsupported or failed)."""

    index: int
    uuid: str
    compute_processes: int | None = None
    utilization_percent: int | None = None
    memory_used_bytes: int | None = None
    energy_mj: int | None = None


class CardReader(Protocol):
    """The small interface the agent uses; :class:`Nvml` is the real one."""

    def open(self) -> None: ...

    def close(self) -> None: ...

    def read_cards(self, *, query_processes: bool) -> list[CardSample]: ...


def _error_code(exc: BaseException) -> int | None:
    value = getattr(exc, "value", None)
    return value if isinstance(value, int) else None


class Nvml:
    """NVML through ``pynvml`` (imported on :meth:`open`, so importing the agent never needs it)."""

    def __init__(self, module: ModuleType | Any | None = None) -> None:
        self._module = module
        self._open = False

    @property
    def _nvml(self) -> Any:
        if self._module is None:
            raise NvmlUnavailable("NVML is not open")
        return self._module

    def open(self) -> None:
        if self._module is None:
            try:
                import pynvml
            except ImportError as exc:
                raise NvmlUnavailable(
                    "NVML unavailable: the nvidia-ml-py package (module pynvml) is not installed"
                ) from exc
            self._module = pynvml
        nvml = self._module
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            hint = ""
            if _error_code(exc) in (NVML_ERROR_LIBRARY_NOT_FOUND, NVML_ERROR_DRIVER_NOT_LOADED):
                hint = " (is the NVIDIA driver installed and loaded on this host?)"
            raise NvmlUnavailable(f"NVML unavailable: {exc}{hint}") from exc
        except OSError as exc:  # a broken libnvidia-ml can fail while loading
            raise NvmlUnavailable(f"NVML unavailable: {exc}") from exc
        self._open = True

    def close(self) -> None:
        if self._open:
            self._open = False
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError as exc:
                logger.debug("nvmlShutdown failed: %s", exc)

    def __enter__(self) -> Nvml:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def read_cards(self, *, query_processes: bool) -> list[CardSample]:
        """Every full GPU of the host (MIG instances are not cards), in NVML index order.

        Raises ``NVMLError`` only when the card count cannot be read; a card whose handle or UUID
        cannot be read is logged and left out.
        """
        nvml = self._nvml
        samples = []
        for index in range(nvml.nvmlDeviceGetCount()):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                uuid = nvml.nvmlDeviceGetUUID(handle)
            except nvml.NVMLError as exc:
                logger.error("GPU %d: cannot read its handle or UUID, not reported: %s", index, exc)
                continue
            if isinstance(uuid, bytes):  # nvidia-ml-py before 11.515 returned bytes
                uuid = uuid.decode("ascii", "replace")
            samples.append(
                CardSample(
                    index=index,
                    uuid=uuid,
                    compute_processes=(
                        self._read(index, "compute processes", self._process_count, handle)
                        if query_processes
                        else None
                    ),
                    utilization_percent=self._read(
                        index, "utilisation", lambda h: int(nvml.nvmlDeviceGetUtilizationRates(h).gpu), handle
                    ),
                    memory_used_bytes=self._read(
                        index, "memory", lambda h: int(nvml.nvmlDeviceGetMemoryInfo(h).used), handle
                    ),
                    energy_mj=self._read(
                        index, "energy", lambda h: int(nvml.nvmlDeviceGetTotalEnergyConsumption(h)), handle
                    ),
                )
            )
        return samples

    def _process_count(self, handle: Any) -> int:
        nvml = self._nvml
        try:
            return len(nvml.nvmlDeviceGetComputeRunningProcesses(handle))
        except nvml.NVMLError as exc:
            # Drivers older than the _v3 entry point: fall back to _v2 where the binding has it.
            fallback = getattr(nvml, "nvmlDeviceGetComputeRunningProcesses_v2", None)
            if _error_code(exc) != NVML_ERROR_FUNCTION_NOT_FOUND or fallback is None:
                raise
            return len(fallback(handle))

    def _read(self, index: int, what: str, read: Any, handle: Any) -> int | None:
        nvml = self._nvml
        try:
            return read(handle)
        except nvml.NVMLError as exc:
            if _error_code(exc) == NVML_ERROR_NOT_SUPPORTED:
                logger.debug("GPU %d: %s not supported: %s", index, what, exc)
            else:
                logger.warning("GPU %d: cannot read %s: %s", index, what, exc)
            return None
