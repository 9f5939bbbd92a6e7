"""What the benchmark scripts share: one configuration per fresh subprocess, the peak
extra memory and the median latency of a pass, and writing the results.

Peak memory is what one pass adds on top of what already exists: on a CPU the
resident-memory high-water mark (Linux `VmHWM`, reset through `/proc/self/clear_refs`)
minus the resident size before the pass, in a worker started with glibc's mmap
threshold fixed at 64 KiB, so every large tensor is mapped on allocation and unmapped
on release; on CUDA `torch.cuda.max_memory_allocated()` minus what was allocated
before; for TensorFlow on a CPU its own allocator's peak (it keeps freed memory for
reuse, so the resident size would not show a second pass).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def machine(device: str) -> dict:
    """What a benchmark ran on, for its results' "meta": the device and its name (the
    GPU's, or the CPU's), the number of CPUs and Python's version."""
    import platform

    if device == "cuda":
        import torch

        name = torch.cuda.get_device_name()
    else:
        name = platform.processor() or platform.machine()
    return {
        "device": device,
        "device_name": name,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }


def status_kib(field: str) -> int:
    """A field of Linux /proc/self/status, in KiB (VmRSS, VmHWM)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def in_subprocess(module: str, config: dict):
    """Run `python -m module --worker CONFIG` in a fresh process (fixed mmap threshold,
    TensorFlow's log quiet) and return the JSON it prints last."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-m", module, "--worker", json.dumps(config)],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark worker failed for {config}:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def peak_bytes(one_pass, sync, memory: str) -> int:
    """Extra memory at the peak of one pass. memory: "rss", "cuda" or "tf"."""
    if memory == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        one_pass()
        sync()
        return torch.cuda.max_memory_allocated() - before
    if memory == "tf":
        import tensorflow as tf

        tf.config.experimental.reset_memory_stats("CPU:0")
        before = tf.config.experimental.get_memory_info("CPU:0")["current"]
        one_pass()
        return tf.config.experimental.get_memory_info("CPU:0")["peak"] - before
    before = status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # reset VmHWM to the current resident size
    one_pass()
    return (status_kib("VmHWM") - before) * 1024


def median_ms(one_pass, sync, repeats: int) -> float:
    """The median wall time of `repeats` passes, each synchronised, in ms."""
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        one_pass()
        sync()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def write(results: dict, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    return out
