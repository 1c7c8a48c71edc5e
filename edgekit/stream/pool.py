"""serve's model on several Edge TPUs, with frames in flight: a pool of worker processes.

``[model] device = "usb:*"`` (every attached USB Accelerator) or a list (``"usb:0,usb:1"``)
runs one worker process per device (each opens its Coral under its own device lock:
edgekit/backends/devicelock.py) and spreads the frames over them; one device runs as a pool of
one. Each worker holds up to ``depth`` (2) frames: the parent copies frame n+1 into the second
shared-memory slot and queues its request while the child runs frame n, so the child finds its
next frame waiting the moment an invoke ends and the device never waits for the two process
wake-ups of a round trip (docs/DESIGN.md, "Several Edge TPUs").

- :class:`PipelinedProcess`: a :class:`~edgekit.stream.worker.ModelProcess` with
  ``submit(rgb)`` / ``collect()`` (answers come back in submit order); the crash/hang watchdog,
  restarts and the crash-loop limit are ModelProcess's own.
- :class:`DevicePool`: the workers, and the model interface serve already uses for one model
  (``input_size``, ``resize``, ``task``, ``runner``, ``on_event``, ``reopen``, ``close``,
  ``pool_status()`` for /latest, the status page and /metrics).
- :class:`PooledPipeline`: the Pipeline with one thread per device: each takes the newest
  frame from the capture slot whenever its worker has room (a faster device takes more),
  numbered in the order taken, keeps its worker fed and collects the answers; a reorder buffer
  delivers results in frame order. Each device has its own ResilientClassifier (reopen, CPU
  fallback, Edge TPU retries). A worker that crashes or stops answering is killed by its
  watchdog (``hang_timeout_s``) and restarted (the frame it ran is lost, the ones queued
  behind it go to the new worker); results of the other devices wait for a missing frame at
  most ``max_wait_s`` (1 s) or 64 results, then it is given up (``late_frames``).

The pieces, one module each: ``pool_worker`` (PipelinedProcess), ``pool_lane`` (Lane: one
device's worker and numbers; device_metrics for /metrics), ``pool_devices`` (DevicePool,
expand_devices), ``pool_order`` (CountingSlot, Reorder), ``pool_pipeline`` (PooledPipeline,
make_pipeline). This module names them all.
"""

from edgekit.stream.pool_devices import DevicePool, expand_devices
from edgekit.stream.pool_lane import Lane, device_metrics
from edgekit.stream.pool_order import CountingSlot, Reorder
from edgekit.stream.pool_pipeline import PooledPipeline, make_pipeline
from edgekit.stream.pool_worker import DEPTH, PipelinedProcess

__all__ = ["DEPTH", "CountingSlot", "DevicePool", "Lane", "PipelinedProcess", "PooledPipeline",
           "Reorder", "device_metrics", "expand_devices", "make_pipeline"]  # fmt: skip
