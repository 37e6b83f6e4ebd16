"""A thin wrapper over NVML (nvidia-ml-py, module ``pynvml``).

The agent needs four things from NVML per card: its UUID, whether compute processes run on it,
and telemetry (utilisation, memory used, total energy). :class:`Nvml` reads them and turns the
per-card NVML errors into "unknown" (``None``) instead of exceptions, so one lost or limited card
never stops the others from being reported.

For hardware incidents (docs/hardware-truth.md#sources-and-incidents) :meth:`Nvml.read_health`
reads each card's health: Xid critical errors and double-bit ECC errors from an NVML event set
(drained without waiting), the volatile uncorrected ECC counter, the clock event (throttle)
reasons, and whether the card has fallen off the bus (``NVML_ERROR_GPU_IS_LOST``).

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
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_GPU_IS_LOST = 15
# Event types (nvmlEventType*) and clock event reasons (nvmlClocksEventReason*), from nvml.h.
EVENT_DOUBLE_BIT_ECC = 0x2
EVENT_XID_CRITICAL = 0x8
REASON_SW_THERMAL = 0x20
REASON_HW_THERMAL = 0x40
REASON_HW_POWER_BRAKE = 0x80
THERMAL_REASONS = REASON_SW_THERMAL | REASON_HW_THERMAL
# Power: the hardware power brake only. The software power cap (0x4) holds clocks at the board's
# power limit, which a card at full load reaches as a matter of course: not a fault.
POWER_REASONS = REASON_HW_POWER_BRAKE
MEMORY_ERROR_UNCORRECTED, VOLATILE_ECC = 1, 0
MAX_EVENTS_PER_READ = 1000


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


@dataclass(frozen=True, slots=True)
class CardHealth:
    """One card's health at one instant (:meth:`Nvml.read_health`)."""

    index: int
    uuid: str
    lost: bool = False  # fell off the bus: NVML answers GPU_IS_LOST
    xid_codes: tuple[int, ...] = ()  # Xid critical errors since the last read
    ecc_double_bit_event: bool = False  # a double-bit ECC error event since the last read
    ecc_uncorrected: int | None = None  # volatile uncorrected ECC errors since the driver loaded
    thermal_throttle: bool = False
    power_throttle: bool = False


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
        self._events: Any = None  # the NVML event set, made on the first health read
        self._events_tried = False
        self._uuids: dict[int, str] = {}  # index → UUID last read, to name a card once it is lost

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

    # -- health (incidents) --------------------------------------------------------------------
    def read_health(self) -> list[CardHealth]:
        """Every card's health now, in NVML index order; a card whose handle or queries answer
        GPU_IS_LOST is ``lost`` (named by the UUID read before). Never raises for one card."""
        nvml = self._nvml
        self._ensure_events()
        events = self._drain_events()
        health = []
        count = nvml.nvmlDeviceGetCount()
        for index in range(max(count, max(self._uuids, default=-1) + 1)):
            try:
                if index >= count:
                    raise _Lost()
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                uuid = nvml.nvmlDeviceGetUUID(handle)
            except (nvml.NVMLError, _Lost) as exc:
                if isinstance(exc, _Lost) or _error_code(exc) == NVML_ERROR_GPU_IS_LOST:
                    # named by the UUID read before; "" when this process never read it (the
                    # incident tracker knows the index from its state file)
                    health.append(CardHealth(index=index, uuid=self._uuids.get(index, ""), lost=True))
                else:
                    logger.error("GPU %d: cannot read its handle or UUID for health: %s", index, exc)
                continue
            if isinstance(uuid, bytes):
                uuid = uuid.decode("ascii", "replace")
            self._uuids[index] = uuid
            lost = False
            reasons = ecc = None
            try:
                reasons = int(self._clock_reasons(handle))
            except nvml.NVMLError as exc:
                lost = lost or _error_code(exc) == NVML_ERROR_GPU_IS_LOST
            try:
                ecc = int(nvml.nvmlDeviceGetTotalEccErrors(handle, MEMORY_ERROR_UNCORRECTED, VOLATILE_ECC))
            except nvml.NVMLError as exc:
                lost = lost or _error_code(exc) == NVML_ERROR_GPU_IS_LOST
            xids, ecc_event = events.get(uuid, ((), False))
            health.append(
                CardHealth(
                    index=index,
                    uuid=uuid,
                    lost=lost,
                    xid_codes=tuple(xids),
                    ecc_double_bit_event=ecc_event,
                    ecc_uncorrected=ecc,
                    thermal_throttle=bool(reasons and reasons & THERMAL_REASONS),
                    power_throttle=bool(reasons and reasons & POWER_REASONS),
                )
            )
        return health

    def _clock_reasons(self, handle: Any) -> int:
        nvml = self._nvml
        read = (
            getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
            or nvml.nvmlDeviceGetCurrentClocksThrottleReasons
        )
        return read(handle)

    def _ensure_events(self) -> None:
        """Register every card for Xid and double-bit ECC events, once; a card or driver that
        does not support them is left out (its ECC counter still tells)."""
        if self._events_tried:
            return
        self._events_tried = True
        nvml = self._nvml
        try:
            self._events = nvml.nvmlEventSetCreate()
        except (nvml.NVMLError, AttributeError) as exc:
            logger.warning("NVML events unavailable, Xid errors are not reported: %s", exc)
            return
        for index in range(nvml.nvmlDeviceGetCount()):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                nvml.nvmlDeviceRegisterEvents(handle, EVENT_XID_CRITICAL | EVENT_DOUBLE_BIT_ECC, self._events)
            except nvml.NVMLError as exc:
                logger.warning("GPU %d: cannot register for Xid/ECC events: %s", index, exc)

    def _drain_events(self) -> dict[str, tuple[list[int], bool]]:
        """``{uuid: (Xid codes, double-bit ECC event seen)}`` of the events waiting now."""
        nvml = self._nvml
        found: dict[str, tuple[list[int], bool]] = {}
        if self._events is None:
            return found
        wait = getattr(nvml, "nvmlEventSetWait_v2", None) or nvml.nvmlEventSetWait
        for _ in range(MAX_EVENTS_PER_READ):
            try:
                data = wait(self._events, 0)
            except nvml.NVMLError as exc:
                if _error_code(exc) != NVML_ERROR_TIMEOUT:
                    logger.warning("cannot read NVML events: %s", exc)
                break
            try:
                uuid = nvml.nvmlDeviceGetUUID(data.device)
            except nvml.NVMLError:
                continue
            if isinstance(uuid, bytes):
                uuid = uuid.decode("ascii", "replace")
            xids, ecc = found.get(uuid, ([], False))
            if data.eventType & EVENT_XID_CRITICAL:
                xids.append(int(data.eventData))
            found[uuid] = (xids, ecc or bool(data.eventType & EVENT_DOUBLE_BIT_ECC))
        return found


class _Lost(Exception):
    """A card NVML no longer lists."""
