"""A fake ``pynvml``: the few functions the metering agent calls, over scripted GPUs."""

from __future__ import annotations

from types import SimpleNamespace

NOT_SUPPORTED, LIBRARY_NOT_FOUND, GPU_IS_LOST = 3, 12, 15  # NVML return codes
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
    ) -> None:
        self.uuid, self.pids, self.util, self.mem, self.energy = uuid, pids, util, mem, energy
        self.processes_error, self.util_error = processes_error, util_error


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
        return self.gpus[index]

    def nvmlDeviceGetUUID(self, gpu: FakeGpu) -> str:
        return gpu.uuid

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
