"""A fake ``pynvml``: the few functions the metering agent calls, over scripted GPUs."""

from __future__ import annotations

from types import SimpleNamespace

NOT_SUPPORTED, TIMEOUT, LIBRARY_NOT_FOUND, GPU_IS_LOST = 3, 10, 12, 15  # NVML return codes
EVENT_DOUBLE_BIT_ECC, EVENT_XID = 0x2, 0x8
THERMAL, POWER_BRAKE, SW_POWER_CAP = 0x40, 0x80, 0x4  # clock event reasons
GIB = 1024**3


class FakeNVMLError(Exception):
    def __init__(self, value: int, message: str = "") -> None:
        super().__init__(message or f"NVML error {value}")
        self.value = value


class FakeGpu:
    def __init__(
        self,
        uuid: str,
        *,
        pids: tuple[int, ...] = (),
        util: int | None = 0,
        mem: int | None = 0,
        energy: int | None = None,
        processes_error: int | None = None,
        util_error: int = NOT_SUPPORTED,
        throttle: int = 0,
        ecc_uncorrected: int | None = 0,
    ) -> None:
        self.uuid, self.pids, self.util, self.mem, self.energy = uuid, pids, util, mem, energy
        self.processes_error, self.util_error = processes_error, util_error
        # health: clock event reasons, the volatile uncorrected ECC counter, lost (fell off the bus)
        self.throttle, self.ecc_uncorrected, self.lost = throttle, ecc_uncorrected, False
        self.events: list[tuple[int, int]] = []  # (event type, data) waiting in the event set

    def xid(self, code: int) -> None:
        """An Xid critical error event (read by the next nvmlEventSetWait)."""
        self.events.append((EVENT_XID, code))

    def double_bit_ecc(self) -> None:
        self.events.append((EVENT_DOUBLE_BIT_ECC, 0))
        if self.ecc_uncorrected is not None:
            self.ecc_uncorrected += 1


class FakePynvml:
    """The few pynvml functions the agent calls; ``None`` telemetry raises NOT_SUPPORTED."""

    NVMLError = FakeNVMLError

    def __init__(self, gpus: list[FakeGpu], *, init_error: FakeNVMLError | None = None) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.initialised = False
        self.shut_down = False

    def nvmlInit(self) -> None:
        if self.init_error:
            raise self.init_error
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self.shut_down = True

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        if self.gpus[index].lost:
            raise FakeNVMLError(GPU_IS_LOST)
        return self.gpus[index]

    def nvmlDeviceGetUUID(self, gpu: FakeGpu) -> str:
        return gpu.uuid

    # -- health --------------------------------------------------------------------------------
    def nvmlEventSetCreate(self) -> list[FakeGpu]:
        self.registered: list[FakeGpu] = []
        return self.registered

    def nvmlDeviceRegisterEvents(self, gpu: FakeGpu, types: int, event_set: list[FakeGpu]) -> None:
        event_set.append(gpu)

    def nvmlEventSetWait_v2(self, event_set: list[FakeGpu], timeout_ms: int) -> SimpleNamespace:
        for gpu in event_set:
            if gpu.events:
                kind, data = gpu.events.pop(0)
                return SimpleNamespace(device=gpu, eventType=kind, eventData=data)
        raise FakeNVMLError(TIMEOUT)

    def nvmlDeviceGetCurrentClocksEventReasons(self, gpu: FakeGpu) -> int:
        if gpu.lost:
            raise FakeNVMLError(GPU_IS_LOST)
        return gpu.throttle

    def nvmlDeviceGetTotalEccErrors(self, gpu: FakeGpu, error_type: int, counter_type: int) -> int:
        if gpu.lost:
            raise FakeNVMLError(GPU_IS_LOST)
        if gpu.ecc_uncorrected is None:
            raise FakeNVMLError(NOT_SUPPORTED)
        return gpu.ecc_uncorrected

    def nvmlDeviceGetComputeRunningProcesses(self, gpu: FakeGpu) -> list[SimpleNamespace]:
        if gpu.processes_error is not None:
            raise FakeNVMLError(gpu.processes_error)
        return [SimpleNamespace(pid=pid, usedGpuMemory=GIB) for pid in gpu.pids]

    def nvmlDeviceGetUtilizationRates(self, gpu: FakeGpu) -> SimpleNamespace:
        if gpu.util is None:
            raise FakeNVMLError(gpu.util_error)
        return SimpleNamespace(gpu=gpu.util, memory=0)

    def nvmlDeviceGetMemoryInfo(self, gpu: FakeGpu) -> SimpleNamespace:
        if gpu.mem is None:
            raise FakeNVMLError(NOT_SUPPORTED)
        return SimpleNamespace(total=80 * GIB, free=80 * GIB - gpu.mem, used=gpu.mem)

    def nvmlDeviceGetTotalEnergyConsumption(self, gpu: FakeGpu) -> int:
        if gpu.energy is None:
            raise FakeNVMLError(NOT_SUPPORTED)
        return gpu.energy
